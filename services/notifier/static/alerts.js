// The live alert list: alerts (episodes) with their latest insight and ack, kept
// current from the same events the server derives its state from. Open alerts first,
// worst first; resolved ones stay below, dimmed. Device- and model-supplied strings
// are text only (dom.js).

import { ago, el, labelChips } from "./dom.js";

const RANK = { info: 1, warning: 2, critical: 3 };
const MAX_ROWS = 300;

export class AlertList {
  constructor(root, { onAck, onAnalyse }) {
    this.root = root;
    this.onAck = onAck;
    this.onAnalyse = onAnalyse;
    this.alerts = new Map(); // alert_id -> state (the shape GET /api/alerts returns)
    this.rows = new Map(); // alert_id -> <li>
  }

  load(alerts) {
    this.alerts.clear();
    for (const alert of alerts) this.alerts.set(alert.alert_id, alert);
    this.renderAll();
  }

  apply(id, event) {
    const key = String(event.alert_id || "");
    if (event.kind === "alert" && key) {
      const old = this.alerts.get(key) || { alert_id: key, severity: null, reasons: [] };
      const worst = (RANK[event.severity] || 0) > (RANK[old.severity] || 0);
      this.alerts.set(key, {
        ...old,
        ...event,
        severity: worst ? event.severity : old.severity,
        // A resolve reports the quiet reading: keep what the alert was raised for.
        reasons: (event.reasons || []).length ? event.reasons : old.reasons,
        open: event.state !== "resolved",
        last_id: id,
      });
    } else if (event.kind === "insight" && this.alerts.has(key)) {
      this.alerts.get(key).insight = event; // a later insight supersedes an earlier one
    } else if (event.kind === "ack" && this.alerts.has(key)) {
      this.alerts.get(key).ack = event;
    } else {
      return;
    }
    this.render(key);
  }

  openByDevice() {
    const found = new Map();
    for (const alert of this.alerts.values()) {
      if (!alert.open) continue;
      const seen = found.get(alert.device_id) || { count: 0, worst: null, labels: alert.labels };
      seen.count += 1;
      if ((RANK[alert.severity] || 0) > (RANK[seen.worst] || 0)) seen.worst = alert.severity;
      found.set(alert.device_id, seen);
    }
    return found;
  }

  get openCount() {
    let n = 0;
    for (const alert of this.alerts.values()) if (alert.open) n += 1;
    return n;
  }

  ordered() {
    return [...this.alerts.values()].sort((a, b) =>
      (b.open - a.open) ||
      ((RANK[b.severity] || 0) - (RANK[a.severity] || 0)) ||
      String(b.last_id).localeCompare(String(a.last_id), "en", { numeric: true }));
  }

  renderAll() {
    this.rows.clear();
    const keep = this.ordered().slice(0, MAX_ROWS);
    this.root.replaceChildren(...keep.map((alert) => this.row(alert)));
  }

  render(key) {
    const old = this.rows.get(key);
    const fresh = this.row(this.alerts.get(key));
    if (old) old.replaceWith(fresh);
    // Re-place it by its order among the rows on the page.
    const order = this.ordered().map((a) => a.alert_id);
    const index = order.indexOf(key);
    const next = order.slice(index + 1).map((k) => this.rows.get(k)).find(Boolean);
    if (next && next !== fresh) next.before(fresh);
    else if (!next) this.root.append(fresh);
    while (this.root.children.length > MAX_ROWS) {
      const last = this.root.lastElementChild;
      this.rows.delete(last.dataset.alertId);
      last.remove();
    }
  }

  refreshAges() {
    for (const node of this.root.querySelectorAll("time.age")) {
      node.textContent = ago(node.dateTime);
    }
  }

  row(alert) {
    const li = el("li", {
      class: "alert",
      data: { alertId: alert.alert_id, severity: alert.severity || "info", state: alert.state || "opened" },
    });
    this.rows.set(alert.alert_id, li);
    const age = el("time", { class: "age", text: ago(alert.started || alert.time) });
    age.dateTime = alert.started || alert.time || "";
    li.append(
      el("div", { class: "line" },
        el("span", { class: "severity", text: alert.severity || "info" }),
        el("span", { class: "device", text: alert.device_id }),
        el("span", { class: "sensor", text: alert.sensor }),
        el("span", { class: "state", text: alert.state }),
        labelChips(alert.labels),
        age),
      el("div", { class: "reasons", text: (alert.reasons || []).join("; ") }),
    );
    if (alert.insight) li.append(insightBox(alert.insight));
    li.append(alert.ack ? ackLine(alert.ack) : this.ackForm(alert));
    return li;
  }

  ackForm(alert) {
    const note = el("input", { class: "note" });
    note.placeholder = "note (optional)";
    note.maxLength = 1000;
    const ack = el("button", { class: "ack", text: "Acknowledge" });
    const falseAlarm = el("button", { class: "false-alarm", text: "False alarm" });
    const analyse = el("button", { class: "analyse", text: "Deep analysis" });
    const status = el("span", { class: "ack-status" });
    const send = async (flag) => {
      ack.disabled = falseAlarm.disabled = true;
      try {
        await this.onAck(alert.alert_id, note.value, flag);
        status.textContent = "sent";
      } catch (error) {
        status.textContent = error.message;
        ack.disabled = falseAlarm.disabled = false;
      }
    };
    ack.onclick = () => send(false);
    falseAlarm.onclick = () => send(true);
    analyse.onclick = () => this.onAnalyse(alert.device_id);
    return el("div", { class: "actions-row" }, note, ack, falseAlarm, analyse, status);
  }
}

function insightBox(insight) {
  const box = el("div", { class: "insight", data: { source: insight.source || "builtin" } },
    el("span", { class: "source", text: insight.source }),
    el("span", { class: "diagnosis", text: insight.diagnosis }));
  if (insight.confidence != null) {
    box.append(el("span", { class: "confidence", text: `confidence ${Math.round(insight.confidence * 100)}%` }));
  }
  if (insight.note) box.append(el("div", { class: "insight-note", text: insight.note }));
  const column = (title, items, cls) => el("div", {},
    el("div", { class: "caption", text: title }),
    el("ul", { class: cls }, ...(items || []).map((item) => el("li", { text: item }))));
  box.append(el("div", { class: "columns" },
    (insight.likely_causes || []).length ? column("likely causes", insight.likely_causes, "causes") : null,
    (insight.actions || []).length ? column("actions", insight.actions, "actions") : null));
  return box;
}

function ackLine(ack) {
  const what = ack.false_alarm ? "marked a false alarm" : "acknowledged";
  return el("div", { class: "acked", data: { falseAlarm: Boolean(ack.false_alarm) } },
    el("span", { class: "acked-what", text: `${what} by ${ack.by}` }),
    ack.note ? el("span", { class: "acked-note", text: ack.note }) : null);
}
