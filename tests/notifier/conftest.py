"""A real notifier (in-process, real bootstrap) on a real Redis, and event builders
in the shared contract's format."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from redis.asyncio import Redis

from services.common.auth import dashboard_token
from services.common.bootstrap import Running
from tests.support.services import running


@dataclass
class Notifier:
    service: Running

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.service.app.http_port}"  # type: ignore[attr-defined]

    @property
    def ws(self) -> str:
        return self.http.replace("http://", "ws://") + "/ws"

    @property
    def grpc(self) -> str:
        return f"127.0.0.1:{self.service.grpc_port}"


@asynccontextmanager
async def notifier_at(env: Mapping[str, str]) -> AsyncIterator[Notifier]:
    async with running("notifier", env) as service:
        yield Notifier(service)


@pytest.fixture
async def notifier(base_env: dict[str, str], redis: Redis) -> AsyncIterator[Notifier]:
    async with notifier_at(base_env) as started:
        yield started


@pytest.fixture
def token(dashboard_secret: str) -> str:
    return dashboard_token(dashboard_secret, "tests")


def alert(
    device: str,
    severity: str = "warning",
    *,
    n: int = 0,
    alert_id: str | None = None,
    state: str = "opened",
    labels: dict[str, str] | None = None,
    sensor: str = "temperature",
    reasons: list[str] | None = None,
) -> dict[str, Any]:
    episode = alert_id or f"ep-{device}-{sensor}"
    return {
        "kind": "alert",
        "alert_id": episode,
        "episode_id": episode,
        "state": state,
        "device_id": device,
        "labels": labels or {},
        "sensor": sensor,
        "severity": severity,
        "value": 97.5,
        "score": 0.9,
        "reasons": ["value 97.5 above critical threshold 95"] if reasons is None else reasons,
        "time": "2026-11-25T12:00:00.000Z",
        "started": "2026-11-25T12:00:00.000Z",
        "n": n,
    }


def insight(device: str, alert_id: str, *, source: str = "builtin", n: int = 0) -> dict[str, Any]:
    return {
        "kind": "insight",
        "alert_id": alert_id,
        "episode_id": alert_id,
        "job_id": f"alert:{alert_id}:2",
        "device_id": device,
        "sensor": "temperature",
        "severity": "warning",
        "time": "2026-11-25T12:00:01.000Z",
        "diagnosis": f"diagnosis {n}",
        "likely_causes": ["cooling"],
        "actions": ["check the fan"],
        "urgency": "warning",
        "confidence": 0.7,
        "source": source,
        "cost": 0.0,
    }
