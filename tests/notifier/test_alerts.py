"""The alert book as a plain object: stream entries in, current alerts out."""

from __future__ import annotations

import json
from typing import Any

from services.common.events import stream_fields
from services.notifier.alerts import AlertBook
from services.notifier.entry import parse
from services.notifier.filters import Filter
from tests.notifier.conftest import alert, insight

ACK = {"kind": "ack", "alert_id": "ep-1", "device_id": "d", "by": "ann", "note": "ok",
       "false_alarm": True, "time": "2026-11-25T12:00:02.000Z"}  # fmt: skip


def feed(book: AlertBook, *events: dict[str, Any]) -> None:
    for i, event in enumerate(events, start=1):
        book.apply(*parse(f"{i}-0", stream_fields(event)))


def test_insight_and_ack_attach_to_their_alert_and_later_insight_wins() -> None:
    book = AlertBook()
    feed(book, alert("d", alert_id="ep-1"), insight("d", "ep-1", source="builtin", n=1),
         insight("d", "ep-1", source="model", n=2), ACK)  # fmt: skip
    [state] = book.select(Filter(), {})
    assert state["insight"]["source"] == "model" and state["insight"]["diagnosis"] == "diagnosis 2"
    assert state["ack"] == {"by": "ann", "note": "ok", "false_alarm": True,
                            "time": "2026-11-25T12:00:02.000Z"}  # fmt: skip
    assert state["last_id"] == "1-0"


def test_severity_is_the_peak_and_resolve_keeps_the_reasons() -> None:
    book = AlertBook()
    feed(
        book,
        alert("d", "warning", alert_id="ep-1"),
        alert("d", "critical", alert_id="ep-1", state="escalated", reasons=["above 95"]),
        alert("d", "warning", alert_id="ep-1", state="resolved", reasons=[]),
    )
    [state] = book.select(Filter(), {}, state="resolved")
    assert (state["severity"], state["reasons"], state["open"]) == ("critical", ["above 95"], False)
    assert book.open_count == 0 and book.select(Filter(), {}, state="open") == []


def test_events_for_unknown_alerts_change_nothing() -> None:
    book = AlertBook()
    feed(book, insight("d", "ep-gone"), {**ACK, "alert_id": "ep-gone"},
         {"kind": "alert", "device_id": "d"})  # fmt: skip
    assert book.select(Filter(), {}) == []


def test_resolved_alerts_are_forgotten_oldest_first_beyond_the_bound() -> None:
    book = AlertBook(resolved_kept=2)
    for i in range(5):
        feed(book, alert("d", alert_id=f"ep-{i}", state="resolved"))
    feed(book, alert("d", alert_id="ep-open"))
    assert [a["alert_id"] for a in book.select(Filter(), {})] == ["ep-open", "ep-4", "ep-3"]


def test_selection_by_device_labels_and_severity() -> None:
    book = AlertBook()
    feed(
        book,
        alert("a", "critical", alert_id="ep-a", labels={"site": "north"}),
        alert("b", "warning", alert_id="ep-b", labels={"site": "south"}),
    )
    by_site = book.select(Filter(labels=(("site", "north"),)), {})
    relabelled = book.select(Filter(labels=(("site", "north"),)), {"b": {"site": "north"}})
    assert [a["alert_id"] for a in by_site] == ["ep-a"]
    assert [a["alert_id"] for a in relabelled] == ["ep-b", "ep-a"]
    assert [a["alert_id"] for a in book.select(Filter(min_severity=3), {})] == ["ep-a"]
    assert book.open_by_device() == {"a": (1, 3), "b": (1, 2)}


def test_alert_state_is_plain_json() -> None:
    book = AlertBook()
    feed(book, alert("d", alert_id="ep-1"))
    json.dumps(book.select(Filter(), {}))
