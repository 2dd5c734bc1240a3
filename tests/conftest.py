"""Fixtures shared by the whole suite: a real redis-server, secrets, clean state."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from services.common.embedded_redis import EmbeddedRedis
from services.common.redis_client import connect
from tests.fuzz.sizes import FULL
from tests.support import summary


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), appendonly=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def redis(redis_server: EmbeddedRedis) -> AsyncIterator[Redis]:
    """A client of the session's Redis, emptied before each test."""
    client = connect(redis_server.url)
    await client.flushall()
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
def device_secret() -> str:
    return secrets.token_hex(32)


@pytest.fixture(scope="session")
def dashboard_secret() -> str:
    return secrets.token_hex(32)


@pytest.fixture
def base_env(
    redis_server: EmbeddedRedis, device_secret: str, dashboard_secret: str
) -> dict[str, str]:
    return {
        "REDIS_URL": redis_server.url,
        "VIGIL_DEVICE_SECRET": device_secret,
        "VIGIL_DASHBOARD_SECRET": dashboard_secret,
    }


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item,
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    summary.carry(report)
    return report


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    summary.gather(report)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    summary.print_summary(terminalreporter, "full (VIGIL_CHAOS=full)" if FULL else "small")
