// The device grid: status, labels, open alerts, and a sparkline per sensor from the
// server-downsampled history. Devices come from GET /api/devices and from the live
// alert list (open counts are always the live ones). History is fetched for a bounded
// number of devices, those with open alerts first, so a large fleet cannot flood the API.

import { ago, el, labelChips } from "./dom.js";
import { sparkline } from "./sparkline.js";

const SPARK_DEVICES = 12;
const RANK = { info: 1, warning: 2, critical: 3 };
const WINDOW = "15m";
const POINTS = 40;

export class DeviceGrid {
  constructor(root, api, { onAnalyse, openAlerts }) {
    this.root = root;
    this.api = api;
    this.onAnalyse = onAnalyse;
    this.openAlerts = openAlerts; // () => Map(device id -> {count, worst, labels})
    this.devices = new Map();
    this.history = new Map(); // device id -> {sensor: points}
  }

  async refresh() {
    const { devices } = await this.api.devices();
    this.devices = new Map(devices.map((d) => [d.device_id, d]));
    this.render();
  }

  async refreshHistory() {
    const wanted = this.merged().slice(0, SPARK_DEVICES);
    for (const device of wanted) {
      try {
        const body = await this.api.history(device.device_id, WINDOW, POINTS);
        this.history.set(device.device_id, body.sensors);
      } catch {
        // a missing history is shown as no sparkline
      }
    }
    this.render();
  }

  applyDeviceEvent(event) {
    const known = this.devices.get(event.device_id) || { device_id: event.device_id, open_alerts: 0 };
    this.devices.set(event.device_id, {
      ...known,
      status: event.status,
      labels: event.labels || known.labels,
      last_seen: event.time || known.last_seen,
    });
    this.render();
  }

  deviceIds() {
    return this.merged().map((d) => d.device_id).sort();
  }

  merged() {
    const open = this.openAlerts();
    const all = new Map(this.devices);
    for (const [id, alerts] of open) {
      if (!all.has(id)) all.set(id, { device_id: id, labels: alerts.labels, status: "unknown" });
    }
    const devices = [...all.values()].map((device) => {
      const alerts = open.get(device.device_id);
      return { ...device, open_alerts: alerts ? alerts.count : 0, worst_severity: alerts ? alerts.worst : null };
    });
    return devices.sort((a, b) =>
      ((RANK[b.worst_severity] || 0) - (RANK[a.worst_severity] || 0)) ||
      (b.open_alerts - a.open_alerts) || a.device_id.localeCompare(b.device_id));
  }

  render() {
    this.root.replaceChildren(...this.merged().map((device) => this.card(device)));
  }

  card(device) {
    const card = el("li", {
      class: "device-card",
      data: { deviceId: device.device_id, status: device.status || "unknown",
              severity: device.worst_severity || "none" },
    });
    const alerts = device.open_alerts
      ? el("span", { class: "open-alerts", text: `${device.open_alerts} open` })
      : el("span", { class: "open-alerts none", text: "no alerts" });
    card.append(
      el("div", { class: "line" },
        el("span", { class: "dot", title: device.status }),
        el("span", { class: "device-id", text: device.device_id }),
        alerts),
      labelChips(device.labels),
      el("div", { class: "seen", text: device.last_seen ? `seen ${ago(device.last_seen)}` : device.status }),
    );
    const series = this.history.get(device.device_id) || {};
    const sparks = el("div", { class: "sparks" });
    for (const [sensor, points] of Object.entries(series)) {
      const last = points.length ? points[points.length - 1][1] : null;
      sparks.append(el("div", { class: "spark-row" },
        el("span", { class: "spark-name", text: sensor }),
        sparkline(points),
        el("span", { class: "spark-last", text: last == null ? "" : Number(last).toFixed(1) })));
    }
    card.append(sparks);
    const analyse = el("button", { class: "analyse", text: "Deep analysis" });
    analyse.onclick = () => this.onAnalyse(device.device_id);
    card.append(analyse);
    return card;
  }
}
