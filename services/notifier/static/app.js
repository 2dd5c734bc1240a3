// Vigil dashboard: current state from the HTTP API, then live events over /ws from
// exactly that position, so nothing shown is stale and nothing is missed or doubled.
// Plain ES modules, no build step. Every device- or model-supplied string is text.

import { makeApi } from "./api.js";
import { AlertList } from "./alerts.js";
import { AnalysisPanel } from "./analysis.js";
import { DeviceGrid } from "./devices.js";
import { setText } from "./dom.js";
import { connectLive } from "./live.js";

const params = new URLSearchParams(location.search);
if (params.has("token")) {
  sessionStorage.setItem("vigil.token", params.get("token"));
  params.delete("token");
  history.replaceState(null, "", location.pathname + (params.toString() ? "?" + params : ""));
}
const token = sessionStorage.getItem("vigil.token") || "";
const api = makeApi(token);
const $ = (id) => document.getElementById(id);

function setConnection(state, text) {
  $("connection").dataset.state = state;
  setText($("connection"), text || state);
}

const analysis = new AnalysisPanel($("analysis"), api);
const analyse = (deviceId) => analysis.choose(deviceId);
const alerts = new AlertList($("alerts"), {
  onAck: (id, note, falseAlarm) => api.ack(id, note, falseAlarm),
  onAnalyse: analyse,
});
const devices = new DeviceGrid($("devices"), api, {
  onAnalyse: analyse,
  openAlerts: () => alerts.openByDevice(),
});

let gridDue = null;
function showCounts() {
  setText($("count-open"), alerts.openCount);
  // Alerts can arrive by the hundred: redraw the grid at most once a second.
  if (gridDue === null) {
    gridDue = setTimeout(() => { gridDue = null; devices.render(); }, 1000);
  }
}

async function refreshStats() {
  try {
    const stats = await api.stats();
    setText($("count-rate"), stats.readings_per_second.toFixed(1));
    setText($("count-queue"), stats.queue_depth);
    setText($("count-spend"), stats.llm_spend_today.toFixed(2));
  } catch {
    // counters keep their last value; the connection badge tells the story
  }
}

async function refreshDevices() {
  try {
    await devices.refresh();
    analysis.setDevices(devices.deviceIds());
  } catch {
    // shown again on the next round
  }
}

function onEvents(items) {
  for (const { id, event } of items) {
    if (event.kind === "device") devices.applyDeviceEvent(event);
    else if (event.kind === "analysis") analysis.applyEvent(event);
    else alerts.apply(id, event);
  }
  showCounts();
}

async function main() {
  let state = null;
  while (state === null) {
    try {
      state = await api.alerts();
    } catch (error) {
      setConnection(error.status === 401 ? "error" : "connecting", error.message);
      if (error.status === 401) return;
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }
  alerts.load(state.alerts);
  showCounts();
  connectLive({
    token,
    lastId: state.last_id,
    onEvents,
    onReset: (current) => { alerts.load(current); showCounts(); },
    onState: setConnection,
  });
  await Promise.all([refreshStats(), refreshDevices()]);
  devices.refreshHistory();
  setInterval(refreshStats, 5000);
  setInterval(refreshDevices, 10000);
  setInterval(() => devices.refreshHistory(), 30000);
  setInterval(() => alerts.refreshAges(), 5000);
}

main();
