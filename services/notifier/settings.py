"""The notifier's settings, read once from the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

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
    #: VIGIL_WS_MAX_MESSAGE_BYTES: largest frame a client may send.
    ws_max_message_bytes: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> NotifierSettings:
        env = Env(environ)
        return cls(
            common=CommonSettings.from_env(environ, "notifier", grpc_port=50054, metrics_port=9104),
            http_port=env.integer("VIGIL_HTTP_PORT", 8080, lo=0, hi=65535),
            dashboard_secret=env.hex_secret("VIGIL_DASHBOARD_SECRET", required=True),
            allowed_origins=env.items("VIGIL_ALLOWED_ORIGINS", ()),
            client_queue=env.integer("VIGIL_WS_QUEUE", 1000, lo=1, hi=1_000_000),
            ws_max_message_bytes=env.integer(
                "VIGIL_WS_MAX_MESSAGE_BYTES", 65_536, lo=256, hi=16 << 20
            ),
        )
