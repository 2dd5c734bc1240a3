"""Run one Vigil service in-process with the real bootstrap: real gRPC server on
127.0.0.1:0, real metrics server, real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from services.cli import registry
from services.common.bootstrap import Running, start


@asynccontextmanager
async def running(name: str, env: Mapping[str, str]) -> AsyncIterator[Running]:
    settings_factory, app_factory = registry.load(name)
    settings = settings_factory(
        {
            "VIGIL_HOST": "127.0.0.1",
            "VIGIL_GRPC_PORT": "0",
            "VIGIL_METRICS_PORT": "0",
            "VIGIL_HTTP_PORT": "0",
            "VIGIL_SHUTDOWN_GRACE_SECONDS": "1",
            **env,
        }
    )
    service = await start(name, settings, app_factory)
    try:
        yield service
    finally:
        await service.stop()
