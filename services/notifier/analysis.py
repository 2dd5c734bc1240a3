"""Deep analysis through the analyzer's gRPC (StartAnalysis / GetAnalysis).

Requests are validated here before any call; every call has a deadline; the analyzer's
status becomes an HTTP problem by one plain function (`upstream_error`). Messages of
statuses the analyzer means for clients are passed on; internal ones are not. Must
never hold a call without a deadline.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration
from grpc import aio
from vigil.v1 import analyzer_pb2, analyzer_pb2_grpc

from services.common.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
    Unimplemented,
    VigilError,
)
from services.common.events import SEVERITY_BY_NAME, severity_name
from services.notifier import durations
from services.notifier.protocol import NAME

TICKET = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
STATUS = {1: "queued", 2: "running", 3: "done", 4: "failed"}
WINDOW_DEFAULT_S, WINDOW_MIN_S, WINDOW_MAX_S = 3600, 60, 7 * 86_400


class BadGateway(VigilError):
    """The analyzer answered with something the notifier cannot pass on as it is."""

    status = "INTERNAL"
    http_status = 502


_PASSED_ON: dict[grpc.StatusCode, Callable[[str, float | None], VigilError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: lambda d, _: InvalidArgument("analysis", d),
    grpc.StatusCode.NOT_FOUND: lambda d, _: NotFound(d),
    grpc.StatusCode.FAILED_PRECONDITION: lambda d, _: FailedPrecondition(d),
    grpc.StatusCode.UNIMPLEMENTED: lambda d, _: Unimplemented(
        f"deep analysis is not available: {d}"
    ),
    grpc.StatusCode.RESOURCE_EXHAUSTED: lambda d, wait: ResourceExhausted(d, retry_after=wait),
    grpc.StatusCode.DEADLINE_EXCEEDED: lambda _d, _w: Unavailable(
        "the analyzer did not answer in time"
    ),
    grpc.StatusCode.UNAVAILABLE: lambda _d, _w: Unavailable("the analyzer cannot be reached"),
}


def upstream_error(
    code: grpc.StatusCode, details: str, retry_after: float | None = None
) -> VigilError:
    """The problem to answer when the analyzer's call ended with `code`.

    Statuses the analyzer means for clients keep their message; anything else is a
    502 that names only the code (its details may be internal).
    """
    make = _PASSED_ON.get(code)
    if make is None:
        return BadGateway(f"the analyzer failed ({code.name})")
    return make(details or code.name.lower(), retry_after)


def _retry_after(error: aio.AioRpcError) -> float | None:
    for key, value in error.trailing_metadata() or ():
        if key == "retry-after":
            try:
                return float(value)
            except ValueError:
                return None
    return None


def start_request(body: Any) -> analyzer_pb2.StartAnalysisRequest:
    """A StartAnalysisRequest from `{"device_id", "window", "priority"}`, validated."""
    if not isinstance(body, dict):
        raise InvalidArgument("body", "must be a JSON object")
    device_id = body.get("device_id")
    if not isinstance(device_id, str) or not NAME.fullmatch(device_id):
        raise InvalidArgument("device_id", "must match [A-Za-z0-9_.:-]{1,128}")
    window = durations.seconds(
        body.get("window"), "window", default=WINDOW_DEFAULT_S, lo=WINDOW_MIN_S, hi=WINDOW_MAX_S
    )
    priority = body.get("priority") or "info"
    if not isinstance(priority, str) or priority not in SEVERITY_BY_NAME:
        raise InvalidArgument("priority", "must be info, warning or critical")
    return analyzer_pb2.StartAnalysisRequest(
        device_id=device_id,
        window=Duration(seconds=window),
        priority=SEVERITY_BY_NAME[priority],  # type: ignore[arg-type]
    )


def check_ticket(ticket: str) -> str:
    if not TICKET.fullmatch(ticket):
        raise InvalidArgument("ticket", "must match [A-Za-z0-9_.:-]{1,128}")
    return ticket


def analysis_json(reply: analyzer_pb2.Analysis) -> dict[str, Any]:
    result = None
    if reply.HasField("result"):
        insight = reply.result
        result = {
            "diagnosis": insight.diagnosis,
            "likely_causes": list(insight.likely_causes),
            "actions": list(insight.actions),
            "urgency": severity_name(insight.urgency),
            "confidence": insight.confidence,
            "source": insight.source,
            "cost": insight.cost,
        }
    return {
        "ticket": reply.ticket,
        "status": STATUS.get(reply.status, "unknown"),
        "progress": reply.progress,
        "result": result,
        "error": reply.error or None,
    }


class AnalyzerClient:
    """One channel to the analyzer, opened at start and closed at stop."""

    def __init__(self, addr: str, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.channel = aio.insecure_channel(addr)
        self.stub = analyzer_pb2_grpc.AnalyzerStub(self.channel)

    async def close(self) -> None:
        await self.channel.close()

    async def start(self, request: analyzer_pb2.StartAnalysisRequest) -> str:
        try:
            reply = await self.stub.StartAnalysis(request, timeout=self.timeout_s)
        except aio.AioRpcError as exc:
            raise upstream_error(exc.code(), exc.details() or "", _retry_after(exc)) from None
        return str(reply.ticket)

    async def get(self, ticket: str) -> dict[str, Any]:
        try:
            reply = await self.stub.GetAnalysis(
                analyzer_pb2.GetAnalysisRequest(ticket=ticket), timeout=self.timeout_s
            )
        except aio.AioRpcError as exc:
            raise upstream_error(exc.code(), exc.details() or "", _retry_after(exc)) from None
        return analysis_json(reply)
