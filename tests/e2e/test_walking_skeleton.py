"""The whole path on real processes: device -> ingest -> detector -> Redis -> analyzer
-> notifier -> WebSocket, started by `vigil up` exactly as a user starts it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from vigil.v1 import common_pb2

from services.common.auth import dashboard_token
from tests.support.clients import device_stream, reading, token_for, ws_client
from tests.support.stack import vigil_up

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with vigil_up(tmp_path_factory.mktemp("stack"), "--no-simulator") as state:
        yield state


def ws_url(stack: dict[str, Any]) -> str:
    base = stack["dashboard"].split("/?")[0]
    return base.replace("http://", "ws://") + "/ws"


async def test_critical_reading_is_acked_then_alerted_then_explained(stack: dict[str, Any]) -> None:
    secrets = stack["secrets"]
    token = dashboard_token(secrets["dashboard"], "e2e")
    async with ws_client(ws_url(stack), token) as dashboard:
        async with device_stream(stack["ingest"], token_for(secrets["device"], "press-7")) as dev:
            flow = await dev.hello("press-7", {"site": "plant-north"})
            assert flow.max_in_flight >= 1
            ack = await dev.send(1, [reading("temperature", 120.0), reading("vibration", 2.0)])
        assert ack.seq == 1
        assert len(ack.anomalies) == 1
        anomaly = ack.anomalies[0]
        assert (anomaly.sensor, anomaly.severity) == ("temperature", common_pb2.CRITICAL)
        assert anomaly.episode_id

        alert_id, alert = await dashboard.event(device_id="press-7", kind="alert")
        assert alert["kind"] == "alert"
        assert alert["state"] == "opened"
        assert alert["severity"] == "critical"
        assert alert["episode_id"] == anomaly.episode_id
        assert alert["labels"] == {"site": "plant-north"}
        assert "above critical threshold 95" in alert["reasons"][0]

        insight_id, insight = await dashboard.event(device_id="press-7", kind="insight")
        assert insight["kind"] == "insight"
        assert insight["alert_id"] == alert["alert_id"] == anomaly.episode_id
        assert insight["source"] == "builtin"
        assert insight["diagnosis"]
        assert insight_id > alert_id


async def test_every_service_exports_vigil_metrics(stack: dict[str, Any]) -> None:
    secrets = stack["secrets"]
    token = dashboard_token(secrets["dashboard"], "metrics")
    async with ws_client(ws_url(stack), token) as dashboard:
        async with device_stream(stack["ingest"], token_for(secrets["device"], "pump-2")) as dev:
            await dev.hello("pump-2")
            await dev.send(1, [reading("pressure", 9.5)])
        await dashboard.event(device_id="pump-2", kind="insight")
        expected = {
            "ingest": [
                "vigil_ingest_readings_total",
                'vigil_ingest_batches_total{result="applied"}',
                'vigil_ingest_jobs_enqueued_total{severity="critical"}',
                'vigil_events_published_total{kind="alert"}',
            ],
            "detector": [
                "vigil_detector_readings_total",
                'vigil_detector_verdicts_total{severity="critical"}',
            ],
            "analyzer": [
                'vigil_analyzer_jobs_completed_total{source="builtin"}',
                'vigil_events_published_total{kind="insight"}',
            ],
            "notifier": ["vigil_notifier_ws_clients", "vigil_notifier_events_delivered_total"],
        }
        async with aiohttp.ClientSession() as http:
            for service, names in expected.items():
                async with http.get(stack["metrics"][service]) as response:
                    assert response.status == 200
                    text = await response.text()
                for name in names:
                    lines = [line for line in text.splitlines() if line.startswith(name)]
                    assert lines, f"{service} lacks {name}"
                    assert float(lines[0].rsplit(" ", 1)[1]) >= 1, lines[0]


def test_stack_description_names_every_endpoint(stack: dict[str, Any]) -> None:
    for key in ("redis_url", "ingest", "detector", "analyzer", "notifier_grpc", "dashboard"):
        assert stack[key].startswith(("redis://127.0.0.1", "127.0.0.1", "http://127.0.0.1")), key
    assert set(stack["metrics"]) == {"ingest", "detector", "analyzer", "notifier"}
    assert "?token=" in stack["dashboard"]


def test_state_dir_keeps_secrets_private(stack: dict[str, Any], tmp_path: Path) -> None:
    for line in stack["log"]:
        assert stack["secrets"]["device"] not in line
        assert stack["secrets"]["dashboard"] not in line


def test_stack_redis_writes_each_change_to_disk_before_it_answers(stack: dict[str, Any]) -> None:
    """An ack means the batch is on disk: append-only file, fsync before every reply."""
    import redis

    client = redis.Redis.from_url(stack["redis_url"], decode_responses=True)
    try:
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("appendfsync") == {"appendfsync": "always"}
    finally:
        client.close()
