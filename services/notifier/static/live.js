// The live event stream: subscribe over /ws from the last id seen, hand events over in
// order, and come back by itself. A silent server is noticed by our own pings: no
// answer in time and the socket is dropped and reopened, resuming from the last id.

const PING_EVERY_MS = 15000;
const ANSWER_WITHIN_MS = 10000;

export function connectLive({ token, lastId, onEvents, onReset, onState }) {
  let retryMs = 500;
  let position = lastId;
  let stopped = false;

  function open() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws`);
    let pinger = null;
    let deadline = null;

    const alive = () => {
      clearTimeout(deadline);
      deadline = null;
    };
    ws.onopen = () => {
      ws.send(JSON.stringify({ type: "subscribe", token, last_id: position, batch: true }));
      pinger = setInterval(() => {
        ws.send(JSON.stringify({ type: "ping" }));
        if (deadline === null) deadline = setTimeout(() => ws.close(), ANSWER_WITHIN_MS);
      }, PING_EVERY_MS);
    };
    ws.onmessage = (message) => {
      alive();
      const frame = JSON.parse(message.data);
      if (frame.type === "subscribed") {
        retryMs = 500;
        onState("live", "live");
      } else if (frame.type === "event") {
        position = frame.id;
        onEvents([frame]);
      } else if (frame.type === "events") {
        position = frame.events[frame.events.length - 1].id;
        onEvents(frame.events);
      } else if (frame.type === "reset") {
        position = frame.id;
        onReset(frame.alerts);
      } else if (frame.type === "error") {
        onState("error", frame.message);
      }
    };
    ws.onclose = (close) => {
      clearInterval(pinger);
      alive();
      if (stopped) return;
      if (close.code === 4401) {
        onState("error", "not authorised: open the dashboard URL `vigil up` printed");
        return;
      }
      onState("connecting", close.code === 4408 ? "catching up" : "reconnecting");
      setTimeout(open, retryMs);
      retryMs = Math.min(retryMs * 2, 10000);
    };
  }

  open();
  return { stop: () => { stopped = true; } };
}
