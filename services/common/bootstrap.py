"""Process bootstrap, the same for every service.

settings -> logging -> metrics server -> Redis -> gRPC server with health, reflection and
the boundary interceptor -> the service's own start -> wait for SIGTERM/SIGINT ->
graceful drain (health NOT_SERVING, stop accepting, `server.stop(grace)`, the service's
own stop, close Redis). A service's `__main__` only names its settings and its app.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

import grpc
from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from redis.asyncio import Redis

from services.common import logs, metrics
from services.common.embedded_redis import port_in_use
from services.common.errors import ConfigError
from services.common.grpc_server import BASE_OPTIONS, BoundaryInterceptor, bind
from services.common.redis_client import connect
from services.common.settings import CommonSettings

log = logging.getLogger(__name__)
VERSION = "0.1.0"


class HasCommon(Protocol):
    @property
    def common(self) -> CommonSettings: ...


S = TypeVar("S", bound=HasCommon)


class App(Protocol):
    """What a service gives the bootstrap."""

    @property
    def service_names(self) -> list[str]:
        """Full names of the gRPC services it registers, for health and reflection."""

    @property
    def grpc_options(self) -> list[tuple[str, Any]]:
        """Extra gRPC server options (message sizes, keepalive, concurrency limits)."""

    def register(self, server: aio.Server) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@runtime_checkable
class Drains(Protocol):
    """An app that has something to do the moment draining starts, before in-flight
    RPCs get their grace period (report not-ready, stop taking new work)."""

    async def drain(self) -> None: ...


def main(
    service: str,
    settings_factory: Callable[[Mapping[str, str]], S],
    app_factory: Callable[[S, Redis], App],
    environ: Mapping[str, str] | None = None,
) -> int:
    """Run `service` until SIGTERM/SIGINT; returns the process exit code."""
    try:
        settings = settings_factory(os.environ if environ is None else environ)
    except ConfigError as exc:
        print(f"vigil {service}: {exc.message}", file=sys.stderr)
        return 2
    logs.configure(service, settings.common.log_format, settings.common.log_level)
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    try:
        asyncio.run(_serve(service, settings, app_factory))
    except ConfigError as exc:
        print(f"vigil {service}: {exc.message}", file=sys.stderr)
        return 2
    return 0


@dataclass
class Running:
    """A started service: its ports, its app, and how to drain it."""

    service: str
    app: App
    server: aio.Server
    health: health.aio.HealthServicer
    redis: Redis
    grpc_port: int
    metrics_port: int
    grace_s: float

    async def stop(self) -> None:
        """Graceful drain: NOT_SERVING, finish in-flight RPCs within the grace, close."""
        log.info("draining", extra={"grace_s": self.grace_s})
        await self.health.enter_graceful_shutdown()
        if isinstance(self.app, Drains):
            await self.app.drain()
        try:
            await self.server.stop(self.grace_s)
        finally:
            await self.app.stop()
            await self.redis.aclose()
        log.info("stopped")


async def start(service: str, settings: S, app_factory: Callable[[S, Redis], App]) -> Running:
    """Start `service`: metrics, Redis, gRPC server with health and reflection, the app."""
    common = settings.common
    if common.metrics_port and port_in_use(common.host, common.metrics_port):
        raise ConfigError(f"port {common.host}:{common.metrics_port} (metrics) is already in use")
    metrics_port = metrics.serve_metrics(common.host, common.metrics_port)
    metrics.BUILD_INFO.labels(service, VERSION).set(1)

    redis = connect(common.redis_url)
    try:
        await redis.ping()
    except Exception as exc:  # any failure: one clear line, then exit
        await redis.aclose()
        raise ConfigError(f"cannot reach Redis: {type(exc).__name__}: {exc}") from None

    try:
        app = app_factory(settings, redis)
        server = aio.server(
            interceptors=[BoundaryInterceptor(service)], options=BASE_OPTIONS + app.grpc_options
        )
        app.register(server)
        health_servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        reflection.enable_server_reflection(
            [*app.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], server
        )
        grpc_port = bind(server, common.host, common.grpc_port, f"{service} gRPC")
    except BaseException:
        await redis.aclose()
        raise
    await server.start()
    running = Running(
        service,
        app,
        server,
        health_servicer,
        redis,
        grpc_port,
        metrics_port,
        common.shutdown_grace_s,
    )
    try:
        await app.start()
    except BaseException:
        await server.stop(0)
        await redis.aclose()
        raise
    for name in ["", *app.service_names]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("ready", extra={"grpc_port": grpc_port, "metrics_port": metrics_port})
    return running


async def _serve(service: str, settings: S, app_factory: Callable[[S, Redis], App]) -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    running = await start(service, settings, app_factory)
    try:
        await stopping.wait()
    finally:
        await running.stop()


async def health_check(target: str, timeout_s: float = 2.0) -> bool:
    """True when the gRPC server at `target` reports SERVING."""
    async with aio.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=timeout_s)
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
