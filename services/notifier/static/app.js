// Vigil dashboard: subscribe over /ws, render alerts and insights live, resume from
// the last event id after any disconnect. Every string from devices or models is set
// with textContent, never as HTML.

const params = new URLSearchParams(location.search);
if (params.has("token")) {
  sessionStorage.setItem("vigil.token", params.get("token"));
  params.delete("token");
  history.replaceState(null, "", location.pathname + (params.toString() ? "?" + params : ""));
}
const token = sessionStorage.getItem("vigil.token") || "";

const alertsEl = document.getElementById("alerts");
const template = document.getElementById("alert-template");
const connectionEl = document.getElementById("connection");
const counts = { alerts: 0, insights: 0 };
const rows = new Map(); // alert_id -> <li>
const MAX_ROWS = 500;
let lastId = null;
let retryMs = 500;

function setConnection(state, text) {
  connectionEl.dataset.state = state;
  connectionEl.textContent = text || state;
}

function setText(root, selector, text) {
  root.querySelector(selector).textContent = text == null ? "" : String(text);
}

function rowFor(event) {
  const id = String(event.alert_id || event.episode_id || "");
  let row = rows.get(id);
  if (!row) {
    row = template.content.firstElementChild.cloneNode(true);
    row.dataset.alertId = id;
    rows.set(id, row);
    alertsEl.prepend(row);
    while (alertsEl.children.length > MAX_ROWS) {
      const old = alertsEl.lastElementChild;
      rows.delete(old.dataset.alertId);
      old.remove();
    }
  }
  return row;
}

function renderAlert(event) {
  const row = rowFor(event);
  row.dataset.severity = event.severity || "info";
  row.dataset.state = event.state || "opened";
  setText(row, ".severity", event.severity);
  setText(row, ".device", event.device_id);
  setText(row, ".sensor", event.sensor);
  setText(row, ".state", event.state);
  const age = row.querySelector(".age");
  age.dateTime = event.time || "";
  age.textContent = event.time ? new Date(event.time).toLocaleTimeString() : "";
  // A resolve carries the quiet reading, not the reasons: keep what the alert said.
  if ((event.reasons || []).length) setText(row, ".reasons", event.reasons.join("; "));
  if (event.state === "opened") counts.alerts += 1;
}

function renderInsight(event) {
  const row = rowFor(event);
  const box = row.querySelector(".insight");
  box.hidden = false;
  setText(box, ".source", event.source);
  setText(box, ".diagnosis", event.diagnosis);
  const list = box.querySelector(".actions");
  list.replaceChildren(...(event.actions || []).map((action) => {
    const li = document.createElement("li");
    li.textContent = String(action);
    return li;
  }));
  counts.insights += 1;
}

function render(event) {
  if (event.kind === "alert") renderAlert(event);
  else if (event.kind === "insight") renderInsight(event);
  document.getElementById("count-alerts").textContent = String(counts.alerts);
  document.getElementById("count-insights").textContent = String(counts.insights);
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/ws`);
  ws.onopen = () => {
    ws.send(JSON.stringify({ type: "subscribe", token, last_id: lastId }));
  };
  ws.onmessage = (message) => {
    const frame = JSON.parse(message.data);
    if (frame.type === "subscribed") {
      setConnection("live", "live");
      retryMs = 500;
    } else if (frame.type === "event") {
      lastId = frame.id;
      render(frame.event);
    } else if (frame.type === "reset") {
      rows.clear();
      alertsEl.replaceChildren();
    } else if (frame.type === "error") {
      setConnection("error", frame.message);
    }
  };
  ws.onclose = (close) => {
    if (close.code === 4401) {
      setConnection("error", "not authorised: open the URL `vigil up` printed");
      return;
    }
    setConnection("connecting", "reconnecting");
    setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, 10000);
  };
}

connect();
