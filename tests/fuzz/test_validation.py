"""The pure doors: every validation function at the edge, fed hostile input.

Each either accepts exactly what the contract allows or raises its one documented
error naming the field; nothing else may escape. The oracles here are written from the
README's contract, independently of the code under test.
"""

from __future__ import annotations

import json
import math
import re
import secrets
import time
from typing import Any

import pytest
from google.protobuf.message import DecodeError
from hypothesis import given
from hypothesis import strategies as st
from vigil.v1 import ingest_pb2

from services.analyzer import schema
from services.analyzer.settings import AnalysisSettings
from services.analyzer.tickets import validate_request, validate_ticket
from services.common import auth
from services.common.errors import InvalidArgument, PermissionDenied, Unauthenticated
from services.ingest import validate
from services.notifier.analysis import check_ticket, start_request
from tests.fuzz import strategies as hs
from tests.fuzz.contract import DEVICE_ID, hello_ok, names_field, reading_ok
from tests.fuzz.sizes import PURE, TIMEOUT, cases, ran

pytestmark = [pytest.mark.fuzz, TIMEOUT]


@cases(PURE)
@given(hs.hellos())
def test_any_hello_is_accepted_as_the_contract_says_or_names_its_field(
    message: ingest_pb2.Hello,
) -> None:
    ran("ingest validate.hello")
    try:
        device_id, labels = validate.hello(message)
    except InvalidArgument as exc:
        assert not hello_ok(message)
        assert names_field(exc.message, "hello."), exc.message
    else:
        assert hello_ok(message)
        assert (device_id, labels) == (message.device_id, dict(message.labels))


@cases(PURE)
@given(hs.batches(max_readings=30), st.sampled_from([1, 5, 1000]))
def test_any_batch_is_accepted_whole_or_refused_naming_the_reading(
    message: ingest_pb2.ReadingBatch, max_readings: int
) -> None:
    ran("ingest validate.batch")
    now = time.time()
    try:
        rows = validate.batch(message, now, max_readings)
    except InvalidArgument as exc:
        assert names_field(exc.message, "batch.readings"), exc.message
        count = len(message.readings)
        if exc.field == "batch.readings":
            assert count == 0 or count > max_readings
        else:  # batch.readings[i].<what>: that reading is bad, every one before it fine
            index = int(exc.field.split("[", 1)[1].split("]", 1)[0])
            assert not reading_ok(message.readings[index], now)
            assert all(reading_ok(r, now) for r in message.readings[:index])
    else:
        assert 0 < len(rows) <= max_readings
        assert all(reading_ok(r, now) for r in message.readings)
        assert all(math.isfinite(at) and math.isfinite(value) for _, at, value in rows)


@cases(PURE)
@given(hs.raw_bytes)
def test_garbage_bytes_decode_to_an_error_or_a_message_the_validators_handle(
    data: bytes,
) -> None:
    ran("ingest raw bytes")
    try:
        message = ingest_pb2.DeviceMessage.FromString(data)
    except DecodeError:
        return
    try:
        if message.WhichOneof("kind") == "hello":
            validate.hello(message.hello)
        elif message.WhichOneof("kind") == "batch":
            validate.batch(message.batch, time.time(), 1000)
    except InvalidArgument as exc:
        assert names_field(exc.message, "hello.", "batch."), exc.message


SECRET = secrets.token_hex(32)
VALID_DASHBOARD = auth.dashboard_token(SECRET, "viewer", ttl_s=3600)
VALID_DEVICE = auth.device_token(SECRET, "press-1")


def mutations(token: str) -> st.SearchStrategy[str]:
    """A valid token changed in one place, cut, extended, recased or padded."""
    return st.one_of(
        st.builds(
            lambda i, ch: token[:i] + ch + token[i + 1 :],
            st.integers(0, len(token) - 1),
            st.characters(),
        ),
        st.integers(0, len(token) - 1).map(lambda i: token[:i]),
        st.text(max_size=5).map(lambda extra: token + extra),
        st.just(token.upper()),
        st.just(f" {token} "),
    )


@cases(PURE)
@given(st.one_of(st.none(), st.text(max_size=80), mutations(f"Bearer {VALID_DASHBOARD}")))
def test_any_authorization_header_gives_a_token_or_unauthenticated(header: str | None) -> None:
    ran("auth headers and tokens")
    try:
        token = auth.bearer(header)
    except Unauthenticated as exc:
        assert exc.message
        return
    assert token and token == token.strip()
    assert header is not None and header.strip().lower().startswith("bearer ")


@cases(PURE)
@given(st.one_of(st.text(max_size=120), mutations(VALID_DASHBOARD)))
def test_only_the_exact_dashboard_token_is_accepted(token: str) -> None:
    ran("auth headers and tokens")
    try:
        name = auth.verify_dashboard(SECRET, token)
    except Unauthenticated as exc:
        assert exc.message in {
            "malformed dashboard token",
            "invalid dashboard token",
            "dashboard token expired",
        }
        assert token != VALID_DASHBOARD
    else:
        assert (name, token) == ("viewer", VALID_DASHBOARD)


@cases(PURE)
@given(st.one_of(st.text(max_size=80), mutations(VALID_DEVICE)), hs.names)
def test_only_the_devices_own_token_authorises_it(token: str, device_id: str) -> None:
    ran("auth headers and tokens")
    try:
        auth.verify_device(SECRET, auth.check_device_token_format(token), device_id)
    except (Unauthenticated, PermissionDenied) as exc:
        assert exc.message
        assert token != auth.device_token(SECRET, device_id)
    else:
        assert token == auth.device_token(SECRET, device_id)


ANALYSIS = AnalysisSettings(
    default_window_s=3600, max_window_s=86_400, max_entries=5000, ticket_ttl_s=86_400
)


@cases(PURE)
@given(
    hs.names,
    st.one_of(st.none(), hs.floats),
    st.integers(-(2**31), 2**31 - 1),
    st.one_of(hs.names, st.from_regex(r"an_[0-9a-f]{24}", fullmatch=True)),
)
def test_analysis_requests_and_tickets_are_valid_or_name_their_field(
    device_id: str, window_s: float | None, priority: int, ticket: str
) -> None:
    ran("analyzer request validation")
    try:
        request = validate_request(device_id, window_s, priority, ANALYSIS)
    except InvalidArgument as exc:
        assert exc.field in {"device_id", "window", "priority"}
    else:
        assert DEVICE_ID.fullmatch(request.device_id)
        assert 60 <= request.window_s <= ANALYSIS.max_window_s
        assert request.priority in (1, 2, 3)
    try:
        assert validate_ticket(ticket) == ticket
    except InvalidArgument as exc:
        assert exc.field == "ticket"
        assert not re.fullmatch(r"an_[0-9a-f]{24}", ticket)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | hs.floats | hs.names,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(hs.names, inner, max_size=4),
    max_leaves=12,
)
analysis_bodies = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "device_id": json_values | st.from_regex(r"[a-z0-9-]{1,12}", fullmatch=True),
            "window": json_values | st.from_regex(r"\d{1,8}[smhd]?", fullmatch=True),
            "priority": json_values | st.sampled_from(["info", "warning", "critical"]),
        },
    ),
)


@cases(PURE)
@given(analysis_bodies, hs.names)
def test_any_analysis_body_and_ticket_from_http_is_a_request_or_names_its_field(
    body: Any, ticket: str
) -> None:
    ran("notifier analysis body")
    try:
        request = start_request(body)
    except InvalidArgument as exc:
        assert exc.field in {"body", "device_id", "window", "priority"}
    else:
        assert DEVICE_ID.fullmatch(request.device_id)
        assert 60 <= request.window.seconds <= 7 * 86_400
        assert request.priority in (1, 2, 3)
    try:
        check_ticket(ticket)
    except InvalidArgument as exc:
        assert exc.field == "ticket"


insight_like = st.fixed_dictionaries(
    {},
    optional={
        "diagnosis": json_values,
        "likely_causes": json_values | st.lists(hs.names, max_size=12),
        "actions": json_values | st.lists(hs.names, max_size=12),
        "urgency": json_values | st.sampled_from(["info", "warning", "critical", "CRITICAL"]),
        "confidence": json_values | st.floats(-2, 2),
        "severity": json_values,  # smuggled fields
        "html": st.just("<script>alert(1)</script>"),
    },
)


@cases(PURE)
@given(st.one_of(st.none(), st.text(max_size=300), insight_like.map(json.dumps)))
def test_any_model_answer_is_a_clean_insight_or_invalid_output(content: str | None) -> None:
    ran("analyzer model answer")
    try:
        insight = schema.parse(content)
    except schema.InvalidOutput as exc:
        assert str(exc)
        return
    assert set(insight) == {"diagnosis", "likely_causes", "actions", "urgency", "confidence"}
    assert insight["urgency"] in ("info", "warning", "critical")
    assert 0.0 <= insight["confidence"] <= 1.0
    texts = [insight["diagnosis"], *insight["likely_causes"], *insight["actions"]]
    assert all(isinstance(t, str) and t for t in texts)
    assert all(ch.isprintable() or ch in "\n\t" for t in texts for ch in t)
    assert len(insight["likely_causes"]) <= 8 and len(insight["actions"]) <= 8
