"""The gRPC doors on real servers: Ingest.Stream, Detector.Detect,
Analyzer.StartAnalysis/GetAnalysis and Notifier.Subscribe, fed hostile messages.

Every case ends with a status a client can act on (never INTERNAL or UNKNOWN; an
INVALID_ARGUMENT names its field), within a deadline (no hang), with no unexpected
error caught at any service's boundary, and the door then serves a well-formed
request. The servers run once per module; each case is one or a few RPCs.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc
import pytest
import pytest_asyncio
from google.protobuf.duration_pb2 import Duration
from grpc import aio
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import REGISTRY
from vigil.v1 import (
    analyzer_pb2,
    analyzer_pb2_grpc,
    common_pb2,
    detector_pb2,
    detector_pb2_grpc,
    ingest_pb2,
    notifier_pb2,
    notifier_pb2_grpc,
)

from services.common.auth import dashboard_token, device_token
from services.common.embedded_redis import EmbeddedRedis
from tests.fuzz import strategies as hs
from tests.fuzz.contract import DEVICE_ID, hello_ok, names_field, reading_ok
from tests.fuzz.sizes import NETWORK, SLOW_NETWORK, TIMEOUT, cases, ran
from tests.fuzz.suite import MAX_MESSAGE_BYTES, Suite, suite, unexpected_errors
from tests.support.clients import reading, stream_status

pytestmark = [pytest.mark.fuzz, TIMEOUT, pytest.mark.asyncio(loop_scope="module")]

DEADLINE_S = 15.0  # a case that takes longer is a hang
NEVER = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DEADLINE_EXCEEDED}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def services(
    redis_server: EmbeddedRedis, device_secret: str, dashboard_secret: str
) -> AsyncIterator[Suite]:
    async with suite(redis_server.url, device_secret, dashboard_secret) as started:
        yield started


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def channels(services: Suite) -> AsyncIterator[dict[str, aio.Channel]]:
    opened = {
        name: aio.insecure_channel(services.target(name))
        for name in ("ingest", "detector", "analyzer", "notifier")
    }
    yield opened
    for channel in opened.values():
        await channel.close()


async def final_status(call: Any) -> tuple[grpc.StatusCode, str]:
    """Read a server stream to its end; its status and details."""
    try:
        async for _ in call:
            pass
    except aio.AioRpcError:
        pass
    return await call.code(), await call.details() or ""


class Boundary:
    """No unexpected error at any service's boundary during a case."""

    def __enter__(self) -> Boundary:
        self.before = unexpected_errors()
        return self

    def __exit__(self, *exc: object) -> None:
        assert unexpected_errors() == self.before, "a service caught an unexpected error"


# ---- Ingest.Stream -------------------------------------------------------------------


async def stream(
    target: str, token: str | None, messages: Sequence[Any], raw: bool = False
) -> tuple[grpc.StatusCode, str, list[int]]:
    return await stream_status(target, token, messages, raw, DEADLINE_S)


def batch_ok(batch: ingest_pb2.ReadingBatch, now: float) -> bool:
    if not 1 <= len(batch.readings) <= 1000 or batch.ByteSize() > MAX_MESSAGE_BYTES - 64:
        return False
    return all(reading_ok(r, now, margin_s=60) for r in batch.readings)


async def assert_ingest_serves(target: str, secret: str) -> None:
    code, details, acked = await stream(
        target,
        device_token(secret, "fuzz-canary"),
        [
            ingest_pb2.DeviceMessage(hello=ingest_pb2.Hello(device_id="fuzz-canary")),
            ingest_pb2.DeviceMessage(
                batch=ingest_pb2.ReadingBatch(seq=time.time_ns(), readings=[reading("t", 1.0)])
            ),
        ],
    )
    assert (code, len(acked)) == (grpc.StatusCode.OK, 1), details


huge_batches = st.builds(
    lambda n, sensor: ingest_pb2.ReadingBatch(
        seq=1, readings=[reading(sensor, 1.0)] * n
    ),
    st.sampled_from([1000, 1001, 5000, 20_000]),
    st.sampled_from(["t", "s" * 64]),
)  # fmt: skip
streams = st.tuples(
    st.one_of(hs.hellos(), st.just(ingest_pb2.Hello(device_id="fuzz-dev", labels={"a": "b"}))),
    st.sampled_from(["own", "own", "other", "malformed", "none"]),
    st.lists(
        st.one_of(
            hs.device_messages(),
            hs.batches().map(lambda b: ingest_pb2.DeviceMessage(batch=b)),
            huge_batches.map(lambda b: ingest_pb2.DeviceMessage(batch=b)),
        ),
        max_size=4,
    ),
    st.booleans(),  # start with the Hello
)


@cases(NETWORK)
@given(case=streams)
async def test_ingest_stream_answers_any_messages_with_a_clear_status(
    services: Suite, channels: dict[str, aio.Channel], case: Any
) -> None:
    ran("gRPC Ingest.Stream")
    hello, token_kind, rest, starts_with_hello = case
    secret = services.device_secret
    token = {
        "own": device_token(secret, hello.device_id),
        "other": device_token(secret, "someone-else"),
        "malformed": "Z" * 64,
        "none": None,
    }[token_kind]
    messages = [ingest_pb2.DeviceMessage(hello=hello), *rest] if starts_with_hello else rest
    with Boundary():
        code, details, acked = await stream(services.target("ingest"), token, messages)
        now = time.time()
        assert code not in NEVER, (code, details)
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            assert names_field(details, "hello", "batch"), details
        else:
            assert details or code == grpc.StatusCode.OK
        batches = [m.batch for m in rest if m.WhichOneof("kind") == "batch"]
        clean = (
            starts_with_hello
            and token_kind == "own"
            and hello_ok(hello)
            and all(m.WhichOneof("kind") == "batch" for m in rest)
            and all(batch_ok(b, now) for b in batches)
        )
        if clean:
            assert code == grpc.StatusCode.OK, (code, details)
            assert acked == [b.seq for b in batches]
        if token_kind == "none" and messages:
            assert code == grpc.StatusCode.UNAUTHENTICATED
        await assert_ingest_serves(services.target("ingest"), secret)


@cases(NETWORK)
@given(st.lists(hs.raw_bytes, min_size=1, max_size=3), st.booleans())
async def test_ingest_stream_survives_raw_garbage_bytes(
    services: Suite, channels: dict[str, aio.Channel], chunks: list[bytes], hello_first: bool
) -> None:
    ran("gRPC Ingest.Stream raw bytes")
    secret = services.device_secret
    hello = ingest_pb2.DeviceMessage(hello=ingest_pb2.Hello(device_id="raw-dev"))
    messages = [hello.SerializeToString(), *chunks] if hello_first else chunks
    with Boundary():
        code, details, _ = await stream(
            services.target("ingest"), device_token(secret, "raw-dev"), messages, raw=True
        )
        assert code not in NEVER, (code, details)
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            assert names_field(details, "hello", "batch", "message"), details
        await assert_ingest_serves(services.target("ingest"), secret)


UNARY_METHODS = [
    ("detector", "/vigil.v1.Detector/Detect", False),
    ("analyzer", "/vigil.v1.Analyzer/StartAnalysis", False),
    ("analyzer", "/vigil.v1.Analyzer/GetAnalysis", False),
    ("notifier", "/vigil.v1.Notifier/Subscribe", True),
]


@cases(NETWORK)
@given(st.sampled_from(UNARY_METHODS), hs.raw_bytes)
async def test_unary_doors_answer_raw_garbage_bytes_clearly(
    services: Suite, channels: dict[str, aio.Channel], method: tuple[str, str, bool], data: bytes
) -> None:
    ran("gRPC raw bytes, unary doors")
    service, path, streamed = method
    metadata = (("authorization", f"Bearer {services.token}"),)
    with Boundary():
        if streamed:
            code, details = await final_status(
                channels[service].unary_stream(path, request_serializer=None)(
                    data, metadata=metadata, timeout=0.2
                )
            )
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                return  # decoded to a valid request: subscribed until our deadline
        else:
            try:
                await channels[service].unary_unary(path, request_serializer=None)(
                    data, timeout=DEADLINE_S
                )
                return  # decoded to a request the method accepts
            except aio.AioRpcError as exc:
                code, details = exc.code(), exc.details() or ""
        assert code not in NEVER, (code, details)
        assert details, code


# ---- Detector.Detect -----------------------------------------------------------------


def device_batches() -> st.SearchStrategy[detector_pb2.DeviceBatch]:
    columns = st.builds(
        lambda d, ls, seq, sensors, times, values: detector_pb2.DeviceBatch(
            device_id=d, labels=ls, seq=seq, sensors=sensors, times=times, values=values
        ),
        hs.names,
        hs.labels,
        st.integers(0, 2**64 - 1),
        st.lists(hs.names, max_size=20),
        st.lists(st.one_of(hs.timestamps(), hs.floats), max_size=20),
        st.lists(hs.floats, max_size=20),
    )
    messages = st.builds(
        lambda d, ls, seq, rs: detector_pb2.DeviceBatch(
            device_id=d, labels=ls, seq=seq, readings=rs
        ),
        hs.names,
        hs.labels,
        st.integers(0, 2**64 - 1),
        st.lists(hs.readings(), max_size=20),
    )
    return st.one_of(columns, messages)


@cases(NETWORK)
@given(st.lists(device_batches(), max_size=6))
async def test_detect_judges_any_request_whole_or_refuses_it_naming_the_batch(
    channels: dict[str, aio.Channel], batches: list[detector_pb2.DeviceBatch]
) -> None:
    ran("gRPC Detector.Detect")
    stub = detector_pb2_grpc.DetectorStub(channels["detector"])
    with Boundary():
        try:
            reply = await stub.Detect(
                detector_pb2.DetectRequest(batches=batches), timeout=DEADLINE_S
            )
        except aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT, (exc.code(), exc.details())
            assert names_field(exc.details() or "", "batches["), exc.details()
        else:
            assert len(reply.results) == len(batches)
            for result in reply.results:
                assert 0.0 <= result.max_score <= 1.0
                for verdict in result.anomalies:
                    assert 0.0 <= verdict.score <= 1.0 and math.isfinite(verdict.value)
        canary = detector_pb2.DeviceBatch(
            device_id="fuzz-canary", seq=time.time_ns(), sensors=["t"], times=[time.time()],
            values=[1.0],
        )  # fmt: skip
        ok = await stub.Detect(detector_pb2.DetectRequest(batches=[canary]), timeout=DEADLINE_S)
        assert len(ok.results) == 1


# ---- Analyzer.StartAnalysis / GetAnalysis --------------------------------------------


windows = st.one_of(
    st.none(),
    st.builds(
        lambda s, n: Duration(seconds=s, nanos=n),
        st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers(0, 200_000)),
        st.one_of(st.just(0), st.integers(-(2**31), 2**31 - 1)),
    ),
)
tickets = st.one_of(hs.names, st.from_regex(r"an_[0-9a-f]{24}", fullmatch=True))


@cases(NETWORK)
@given(hs.names, windows, st.integers(-(2**31), 2**31 - 1), tickets)
async def test_analyzer_answers_any_request_or_names_the_field(
    channels: dict[str, aio.Channel],
    device_id: str,
    window: Duration | None,
    priority: int,
    ticket: str,
) -> None:
    ran("gRPC Analyzer.StartAnalysis/GetAnalysis")
    stub = analyzer_pb2_grpc.AnalyzerStub(channels["analyzer"])
    request = analyzer_pb2.StartAnalysisRequest(device_id=device_id, priority=priority)  # type: ignore[arg-type]
    if window is not None:
        request.window.CopyFrom(window)
    with Boundary():
        try:
            started = await stub.StartAnalysis(request, timeout=DEADLINE_S)
        except aio.AioRpcError as exc:
            assert exc.code() in {
                grpc.StatusCode.INVALID_ARGUMENT,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
            }, (exc.code(), exc.details())
            if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
                assert names_field(exc.details() or "", "device_id", "window", "priority")
        else:
            assert DEVICE_ID.fullmatch(device_id) and priority in (0, 1, 2, 3)
            got = await stub.GetAnalysis(
                analyzer_pb2.GetAnalysisRequest(ticket=started.ticket), timeout=DEADLINE_S
            )
            assert got.ticket == started.ticket
        try:
            await stub.GetAnalysis(analyzer_pb2.GetAnalysisRequest(ticket=ticket), timeout=5)
        except aio.AioRpcError as exc:
            assert exc.code() in {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND}
            assert exc.details()


# ---- Notifier.Subscribe --------------------------------------------------------------

subscribe_requests = st.builds(
    lambda devices, kinds, labels, severity, last_id: notifier_pb2.SubscribeRequest(
        device_ids=devices,
        kinds=kinds,
        labels=labels,
        min_severity=severity,  # type: ignore[arg-type]
        last_id=last_id,
    ),
    st.lists(hs.names, max_size=3),
    st.lists(st.one_of(st.sampled_from(["alert", "insight"]), hs.names), max_size=3),
    hs.labels,
    st.integers(-(2**31), 2**31 - 1),
    st.one_of(hs.names, st.from_regex(r"\d{1,20}-\d{1,20}", fullmatch=True)),
)
token_kinds = st.sampled_from(["valid", "valid", "expired", "forged", "device", "none"])


@cases(SLOW_NETWORK)
@given(subscribe_requests, token_kinds)
async def test_subscribe_accepts_or_refuses_any_request_clearly(
    services: Suite,
    channels: dict[str, aio.Channel],
    request: notifier_pb2.SubscribeRequest,
    token_kind: str,
) -> None:
    ran("gRPC Notifier.Subscribe")
    secret = services.dashboard_secret
    token = {
        "valid": services.token,
        "expired": f"fuzz.1.{dashboard_token(secret, 'fuzz', 1).rsplit('.', 1)[1]}",
        "forged": dashboard_token("00" * 32, "fuzz"),
        "device": device_token(services.device_secret, "fuzz"),
        "none": None,
    }[token_kind]
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    stub = notifier_pb2_grpc.NotifierStub(channels["notifier"])
    with Boundary():
        code, details = await final_status(stub.Subscribe(request, metadata=metadata, timeout=0.2))
        if token_kind != "valid":
            assert code == grpc.StatusCode.UNAUTHENTICATED, (code, details)
        elif code != grpc.StatusCode.DEADLINE_EXCEEDED:  # accepted: open until our deadline
            assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, details)
            assert names_field(details, "device_ids", "kinds", "labels", "last_id"), details


async def test_no_subscriber_is_left_behind(channels: dict[str, aio.Channel]) -> None:
    """Run after the fuzzing above: every cancelled Subscribe was unregistered."""
    deadline = time.monotonic() + 10
    while REGISTRY.get_sample_value("vigil_notifier_grpc_subscribers") != 0:
        assert time.monotonic() < deadline, "subscribers were left registered"
        await asyncio.sleep(0.05)  # the gauge has no event to await; bounded poll


# Silence "imported but unused" for names used only in annotations above.
_ = common_pb2
