"""What a batch adds to `vigil:history:{device}`: its readings, thinned for long spans.

One stream entry per batch, field `readings` = JSON `[[sensor, unix seconds, value],
...]`. A reading is kept when it is at least `resolution_s` after the last kept reading
of its sensor, or when the detector found it anomalous, so a fast device's history
covers `maxlen x resolution` of time at least (at the default 2000 entries and 1 s, over
half an hour; a device reporting once a minute keeps more than a day) while every
anomaly stays visible. The stream itself is capped (MAXLEN ~) by the commit script.
Builds JSON only: it never touches Redis itself.
"""

from __future__ import annotations

import json

from vigil.v1 import common_pb2


class HistoryThinner:
    """Per stream: when each sensor's last kept reading was."""

    def __init__(self, resolution_s: float) -> None:
        self.resolution_s = resolution_s
        self._kept: dict[str, float] = {}

    def entry(
        self, readings: list[tuple[str, float, float]], anomalies: list[common_pb2.Verdict]
    ) -> str:
        """The history JSON of one batch; "" when nothing in it is kept."""
        flagged = {(v.sensor, round(v.time.seconds + v.time.nanos / 1e9, 3)) for v in anomalies}
        kept = self._kept
        resolution = self.resolution_s
        rows = []
        for sensor, t, value in readings:
            last = kept.get(sensor)
            if (
                last is None
                or t - last >= resolution
                or t < last
                or (flagged and (sensor, round(t, 3)) in flagged)
            ):
                kept[sensor] = t
                rows.append([sensor, round(t, 3), value])
        return json.dumps(rows, separators=(",", ":")) if rows else ""
