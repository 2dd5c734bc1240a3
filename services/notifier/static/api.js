// The notifier's HTTP API with the dashboard token. Errors are the server's problem
// details (RFC 9457) as an ApiError whose message is safe to show as text.

export class ApiError extends Error {
  constructor(status, title, detail, retryAfter) {
    super(`${status} ${title}: ${detail}`);
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

export function makeApi(token) {
  async function call(method, path, body) {
    const response = await fetch(path, {
      method,
      headers: {
        Authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { "Content-Type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let payload = null;
    try {
      payload = await response.json();
    } catch {
      payload = null;
    }
    if (!response.ok) {
      const problem = payload || {};
      throw new ApiError(response.status, problem.title || response.statusText,
        problem.detail || "request failed", Number(response.headers.get("Retry-After")) || 0);
    }
    return payload;
  }
  return {
    alerts: () => call("GET", "/api/alerts?state=all&limit=300"),
    ack: (id, note, falseAlarm) =>
      call("POST", `/api/alerts/${encodeURIComponent(id)}/ack`, { note, false_alarm: falseAlarm }),
    devices: () => call("GET", "/api/devices"),
    history: (id, window, points) =>
      call("GET", `/api/devices/${encodeURIComponent(id)}/history?window=${window}&points=${points}`),
    stats: () => call("GET", "/api/stats"),
    startAnalysis: (deviceId, window, priority) =>
      call("POST", "/api/analysis", { device_id: deviceId, window, priority }),
    analysis: (ticket) => call("GET", `/api/analysis/${encodeURIComponent(ticket)}`),
  };
}
