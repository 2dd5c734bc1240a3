"""The notifier service: the event hub, the HTTP/WebSocket server and gRPC Subscribe.

Start order matters: the hub rebuilds alert state from the stream before the HTTP
server accepts anyone, so the first GET /api/alerts already sees everything.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from aiohttp import web
from grpc import aio
from redis.asyncio import Redis
from vigil.v1 import notifier_pb2, notifier_pb2_grpc

from services.common.embedded_redis import port_in_use
from services.common.errors import ConfigError
from services.common.ratelimit import RateLimiter
from services.common.redis_client import connect
from services.common.scripts import Scripts
from services.notifier import web as notifier_web
from services.notifier.alerts import AlertBook
from services.notifier.analysis import AnalyzerClient
from services.notifier.grpc_api import NotifierServicer
from services.notifier.hub import Hub
from services.notifier.settings import NotifierSettings

log = logging.getLogger(__name__)


class NotifierApp:
    """The notifier service for the bootstrap."""

    service_names: ClassVar[list[str]] = [
        notifier_pb2.DESCRIPTOR.services_by_name["Notifier"].full_name
    ]
    # HTTP/2 keepalive: a Subscribe peer that stops answering pings is dropped.
    grpc_options: ClassVar[list[tuple[str, Any]]] = [
        ("grpc.keepalive_time_ms", 20_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.keepalive_permit_without_calls", 1),
    ]

    def __init__(self, settings: NotifierSettings, redis: Redis) -> None:
        self.settings = settings
        self.redis = redis
        self.reader = connect(settings.common.redis_url, timeout_s=10.0)
        self.hub = Hub(redis, self.reader, AlertBook(settings.resolved_kept))
        self.analyzer = AnalyzerClient(settings.analyzer_addr, settings.analyzer_timeout_s)
        self.runner: web.AppRunner | None = None
        self.http_port = settings.http_port

    def register(self, server: aio.Server) -> None:
        notifier_pb2_grpc.add_NotifierServicer_to_server(
            NotifierServicer(self.settings, self.hub), server
        )

    async def start(self) -> None:
        host, port = self.settings.common.host, self.settings.http_port
        if port and port_in_use(host, port):
            raise ConfigError(f"port {host}:{port} (dashboard HTTP) is already in use")
        await self.hub.start()
        self.runner = web.AppRunner(
            notifier_web.build(
                self.settings,
                self.redis,
                self.hub,
                RateLimiter(self.redis, Scripts(self.redis)),
                self.analyzer,
            ),
            access_log=None,
            shutdown_timeout=2.0,
        )
        await self.runner.setup()
        await web.TCPSite(self.runner, host, port).start()
        self.http_port = int(self.runner.addresses[0][1])
        log.info("dashboard listening", extra={"http_port": self.http_port})

    async def drain(self) -> None:
        """Report not-ready so the load balancer stops sending new dashboards here."""
        self.hub.draining = True

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
        await self.hub.stop()
        await self.reader.aclose()
        await self.analyzer.close()
