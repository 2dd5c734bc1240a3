// Deep analysis: start one for a device and watch its progress, from `analysis` events
// on the live stream and, as a fallback, by asking for its status now and then.

import { el, setText } from "./dom.js";

const POLL_MS = 2000;

export class AnalysisPanel {
  constructor(root, api) {
    this.api = api;
    this.device = root.querySelector("#analysis-device");
    this.window = root.querySelector("#analysis-window");
    this.priority = root.querySelector("#analysis-priority");
    this.button = root.querySelector("#analysis-start");
    this.progress = root.querySelector("#analysis-progress");
    this.status = root.querySelector("#analysis-status");
    this.result = root.querySelector("#analysis-result");
    this.ticket = null;
    this.timer = null;
    this.button.onclick = () => this.start();
  }

  setDevices(ids) {
    const current = this.device.value;
    this.device.replaceChildren(...ids.map((id) => {
      const option = el("option", { text: id });
      option.value = id;
      return option;
    }));
    if (ids.includes(current)) this.device.value = current;
  }

  choose(deviceId) {
    if (![...this.device.options].some((o) => o.value === deviceId)) {
      const option = el("option", { text: deviceId });
      option.value = deviceId;
      this.device.append(option);
    }
    this.device.value = deviceId;
    this.device.focus();
  }

  async start() {
    clearTimeout(this.timer);
    this.result.replaceChildren();
    this.progress.value = 0;
    setText(this.status, "starting");
    try {
      const { ticket } = await this.api.startAnalysis(this.device.value, this.window.value, this.priority.value);
      this.ticket = ticket;
      setText(this.status, "queued");
      this.poll();
    } catch (error) {
      this.ticket = null;
      setText(this.status, error.message);
    }
  }

  async poll() {
    if (!this.ticket) return;
    try {
      this.show(await this.api.analysis(this.ticket));
    } catch (error) {
      setText(this.status, error.message);
    }
    if (this.ticket) this.timer = setTimeout(() => this.poll(), POLL_MS);
  }

  applyEvent(event) {
    if (event.kind === "analysis" && event.ticket === this.ticket) this.show(event);
  }

  show(analysis) {
    this.progress.value = Number(analysis.progress) || 0;
    setText(this.status, analysis.status === "failed" ? `failed: ${analysis.error || ""}` : analysis.status);
    if (analysis.status === "done" || analysis.status === "failed") {
      this.ticket = null;
      clearTimeout(this.timer);
    }
    const result = analysis.result;
    if (!result) return;
    this.result.replaceChildren(
      el("div", { class: "insight", data: { source: result.source || "builtin" } },
        el("span", { class: "source", text: result.source }),
        el("span", { class: "diagnosis", text: result.diagnosis }),
        el("ul", { class: "causes" }, ...(result.likely_causes || []).map((c) => el("li", { text: c }))),
        el("ul", { class: "actions" }, ...(result.actions || []).map((a) => el("li", { text: a })))));
  }
}
