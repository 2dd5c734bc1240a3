"""The notifier's settings, read once from the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.common.events import DEFAULT_EVENTS_MAXLEN
from services.common.settings import CommonSettings, Env, Secret


@dataclass(frozen=True, slots=True)
class NotifierSettings:
    common: CommonSettings
    #: VIGIL_HTTP_PORT: the dashboard page, /ws, the HTTP API and health endpoints.
    http_port: int
    #: VIGIL_DASHBOARD_SECRET: hex key that dashboard tokens are signed with (required).
    dashboard_secret: Secret
    #: VIGIL_ALLOWED_ORIGINS: Origins allowed to open /ws (comma-separated); empty
    #: means same-origin only (the page this notifier serves).
    allowed_origins: tuple[str, ...]
    #: VIGIL_WS_QUEUE: events buffered per client before it counts as too slow.
    client_queue: int
    #: VIGIL_WS_SEND_BUFFER_BYTES: kernel send buffer of each WebSocket connection
    #: (SO_SNDBUF; Linux keeps twice this for bookkeeping). Bounds what a client that
    #: stops reading holds before its events queue and it is cut off; 0 leaves the
    #: kernel's autotuning, which lets one such client hold megabytes.
    ws_send_buffer_bytes: int
    #: VIGIL_WS_MAX_MESSAGE_BYTES: largest frame a client may send.
    ws_max_message_bytes: int
    #: VIGIL_WS_HEARTBEAT_SECONDS: protocol ping interval; a peer that does not answer
    #: within half of it is closed.
    ws_heartbeat_s: float
    #: VIGIL_WS_COMPRESS: offer permessage-deflate (halves fan-out throughput).
    ws_compress: bool
    #: VIGIL_ANALYZER_ADDR: the analyzer's gRPC address, for deep analysis.
    analyzer_addr: str
    #: VIGIL_ANALYZER_TIMEOUT_SECONDS: deadline of a call to the analyzer.
    analyzer_timeout_s: float
    #: VIGIL_API_RATE_PER_MINUTE / VIGIL_API_BURST: HTTP API calls per dashboard token.
    api_rate_per_minute: float
    api_burst: float
    #: VIGIL_ANALYSIS_RATE_PER_HOUR / VIGIL_ANALYSIS_BURST: deep analyses per token.
    analysis_rate_per_hour: float
    analysis_burst: float
    #: VIGIL_EVENTS_MAXLEN: approximate cap of vigil:events when publishing acks.
    events_maxlen: int
    #: VIGIL_RESOLVED_ALERTS_KEPT: resolved alerts remembered for GET /api/alerts.
    resolved_kept: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> NotifierSettings:
        env = Env(environ)
        return cls(
            common=CommonSettings.from_env(environ, "notifier", grpc_port=50054, metrics_port=9104),
            http_port=env.integer("VIGIL_HTTP_PORT", 8080, lo=0, hi=65535),
            dashboard_secret=env.hex_secret("VIGIL_DASHBOARD_SECRET", required=True),
            allowed_origins=env.items("VIGIL_ALLOWED_ORIGINS", ()),
            client_queue=env.integer("VIGIL_WS_QUEUE", 1000, lo=1, hi=1_000_000),
            ws_send_buffer_bytes=env.integer(
                "VIGIL_WS_SEND_BUFFER_BYTES", 256 << 10, lo=0, hi=64 << 20
            ),
            ws_max_message_bytes=env.integer(
                "VIGIL_WS_MAX_MESSAGE_BYTES", 65_536, lo=256, hi=16 << 20
            ),
            ws_heartbeat_s=env.number("VIGIL_WS_HEARTBEAT_SECONDS", 20.0, lo=0.2, hi=600.0),
            ws_compress=env.flag("VIGIL_WS_COMPRESS", False),
            analyzer_addr=env.text("VIGIL_ANALYZER_ADDR", "127.0.0.1:50053"),
            analyzer_timeout_s=env.number("VIGIL_ANALYZER_TIMEOUT_SECONDS", 5.0, lo=0.05, hi=120.0),
            api_rate_per_minute=env.number("VIGIL_API_RATE_PER_MINUTE", 600.0, lo=1.0),
            api_burst=env.number("VIGIL_API_BURST", 60.0, lo=1.0),
            analysis_rate_per_hour=env.number("VIGIL_ANALYSIS_RATE_PER_HOUR", 30.0, lo=1.0),
            analysis_burst=env.number("VIGIL_ANALYSIS_BURST", 3.0, lo=1.0),
            events_maxlen=env.integer("VIGIL_EVENTS_MAXLEN", DEFAULT_EVENTS_MAXLEN, lo=100),
            resolved_kept=env.integer("VIGIL_RESOLVED_ALERTS_KEPT", 1000, lo=0, hi=1_000_000),
        )
