"""The notifier service: the event hub, the HTTP/WebSocket server and gRPC Subscribe."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from aiohttp import web
from grpc import aio
from redis.asyncio import Redis
from vigil.v1 import notifier_pb2, notifier_pb2_grpc

from services.common.embedded_redis import port_in_use
from services.common.errors import ConfigError
from services.common.redis_client import connect
from services.notifier import web as notifier_web
from services.notifier.grpc_api import NotifierServicer
from services.notifier.hub import Hub
from services.notifier.settings import NotifierSettings

log = logging.getLogger(__name__)


class NotifierApp:
    """The notifier service for the bootstrap."""

    service_names: ClassVar[list[str]] = [
        notifier_pb2.DESCRIPTOR.services_by_name["Notifier"].full_name
    ]
    grpc_options: ClassVar[list[tuple[str, Any]]] = []

    def __init__(self, settings: NotifierSettings, redis: Redis) -> None:
        self.settings = settings
        self.redis = redis
        self.reader = connect(settings.common.redis_url, timeout_s=10.0)
        self.hub = Hub(redis, self.reader)
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
            notifier_web.build(self.settings, self.redis, self.hub),
            access_log=None,
            shutdown_timeout=2.0,
        )
        await self.runner.setup()
        await web.TCPSite(self.runner, host, port).start()
        self.http_port = int(self.runner.addresses[0][1])
        log.info("dashboard listening", extra={"http_port": self.http_port})

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
        await self.hub.stop()
        await self.reader.aclose()
