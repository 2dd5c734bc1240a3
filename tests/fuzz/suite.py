"""The four services on 127.0.0.1 for the network fuzz tests, started once per module,
and the checks every case ends with: no unexpected error at any boundary, and a
well-formed request served right after."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from prometheus_client import REGISTRY

from services.common.auth import dashboard_token
from services.common.bootstrap import Running
from tests.support.services import running

SERVICES = ("ingest", "detector", "analyzer", "notifier")
#: Small enough that "huge" batches meet the message limit, not only the count limit.
MAX_MESSAGE_BYTES = 256 * 1024


@dataclass
class Suite:
    ingest: Running
    detector: Running
    analyzer: Running
    notifier: Running
    device_secret: str
    dashboard_secret: str

    def target(self, service: str) -> str:
        running_: Running = getattr(self, service)
        return f"127.0.0.1:{running_.grpc_port}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.notifier.app.http_port}"  # type: ignore[attr-defined]

    @property
    def ws(self) -> str:
        return self.http.replace("http://", "ws://") + "/ws"

    @property
    def token(self) -> str:
        return dashboard_token(self.dashboard_secret, "fuzz", ttl_s=3600)


def unexpected_errors() -> float:
    """Exceptions any service caught at a boundary (each also logged with its trace)."""
    return sum(
        REGISTRY.get_sample_value("vigil_errors_total", {"service": s, "where": w}) or 0.0
        for s in SERVICES
        for w in _boundaries()
    )


def _boundaries() -> set[str]:
    found: set[str] = set()
    for metric in REGISTRY.collect():
        if metric.name == "vigil_errors":
            found.update(sample.labels["where"] for sample in metric.samples)
    return found


@asynccontextmanager
async def suite(redis_url: str, device_secret: str, dashboard_secret: str) -> AsyncIterator[Suite]:
    base = {
        "REDIS_URL": redis_url,
        "VIGIL_DEVICE_SECRET": device_secret,
        "VIGIL_DASHBOARD_SECRET": dashboard_secret,
        "VIGIL_LOG_LEVEL": "error",
    }
    async with AsyncExitStack() as stack:
        detector = await stack.enter_async_context(running("detector", base))
        ingest = await stack.enter_async_context(
            running(
                "ingest",
                {
                    **base,
                    "VIGIL_DETECTOR_ADDRS": f"127.0.0.1:{detector.grpc_port}",
                    "VIGIL_MAX_MESSAGE_BYTES": str(MAX_MESSAGE_BYTES),
                    "VIGIL_HELLO_TIMEOUT_SECONDS": "5",
                },
            )
        )
        analyzer = await stack.enter_async_context(running("analyzer", base))
        notifier = await stack.enter_async_context(
            running(
                "notifier",
                {
                    **base,
                    "VIGIL_ANALYZER_ADDR": f"127.0.0.1:{analyzer.grpc_port}",
                    "VIGIL_API_RATE_PER_MINUTE": "100000000",
                    "VIGIL_API_BURST": "1000000",
                    "VIGIL_ANALYSIS_RATE_PER_HOUR": "100000000",
                    "VIGIL_ANALYSIS_BURST": "1000000",
                },
            )
        )
        yield Suite(ingest, detector, analyzer, notifier, device_secret, dashboard_secret)
