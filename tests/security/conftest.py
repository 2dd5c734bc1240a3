"""A real ingest (with its detector) and a real notifier for the security tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from tests.support.services import running


@pytest.fixture
async def ingest(base_env: dict[str, str], redis: Redis) -> AsyncIterator[str]:
    async with running("detector", base_env) as detector:
        env = {**base_env, "VIGIL_DETECTOR_ADDRS": f"127.0.0.1:{detector.grpc_port}"}
        async with running("ingest", env) as service:
            yield f"127.0.0.1:{service.grpc_port}"
