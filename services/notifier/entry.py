"""One `vigil:events` entry as the notifier carries it: the cheap fields for filtering,
the event's JSON exactly as stored, and the `event` frame built once for every client.

The JSON is parsed once per entry (here) and never re-encoded per client: fan-out to a
thousand clients must not cost a thousand `json.dumps`. Must never do I/O.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from services.common.events import Event, stream_id_key


@dataclass(frozen=True, slots=True)
class Entry:
    id: str
    key: tuple[int, int]
    kind: str
    device: str
    severity: int
    #: The event as JSON text, as the producer wrote it (checked to be a JSON object).
    data: str
    #: `{"id":...,"event":...}`, an item of a batch frame, built once.
    item: str
    #: `{"type":"event","id":...,"event":...}`, ready to send.
    frame: str
    #: The same frame as UTF-8, encoded once for every client.
    frame_bytes: bytes
    #: ... and as a whole uncompressed server WebSocket frame (header included), so a
    #: client that keeps up is written to with one `transport.write` and no framing.
    wire: bytes


def text_frame(payload: bytes) -> bytes:
    """An unmasked, uncompressed, final text frame (RFC 6455 section 5.2)."""
    size = len(payload)
    if size < 126:
        header = bytes((0x81, size))
    elif size < 1 << 16:
        header = bytes((0x81, 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + size.to_bytes(8, "big")
    return header + payload


class BadEntry(ValueError):
    """A stream entry that is not a Vigil event (missing fields, data not a JSON object)."""


def parse(entry_id: str, fields: dict[str, str]) -> tuple[Entry, Event]:
    """The entry and its decoded event; BadEntry if it is not a well-formed event."""
    data = fields.get("data")
    if data is None:
        raise BadEntry("no data field")
    try:
        event = json.loads(data)
        severity = int(fields.get("sev", 0))
    except ValueError:
        raise BadEntry("data is not JSON or sev is not an integer") from None
    if not isinstance(event, dict):
        raise BadEntry("data is not a JSON object")
    # Stream ids are digits and a dash: safe inside a JSON string as they are.
    item = '{"id":"' + entry_id + '","event":' + data + "}"
    frame = '{"type":"event",' + item[1:]
    entry = Entry(
        id=entry_id,
        key=stream_id_key(entry_id),
        kind=fields.get("kind") or str(event.get("kind", "")),
        device=fields.get("device") or str(event.get("device_id") or ""),
        severity=severity,
        data=data,
        item=item,
        frame=frame,
        frame_bytes=(payload := frame.encode()),
        wire=text_frame(payload),
    )
    return entry, event
