"""What a subscriber wants to see: devices or a label selector, a minimum severity and
event kinds, judged from a stream entry's cheap fields without parsing its JSON.

Labels are a device's, not an event's: alerts carry them, insights and acks do not, so
a selector is matched against the labels the notifier last saw for the event's device.
Must never do I/O; it runs once per event per subscriber.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

NO_LABELS: Mapping[str, str] = {}


@dataclass(frozen=True, slots=True)
class Filter:
    """Empty fields accept everything; given fields must all match."""

    devices: frozenset[str] = frozenset()
    #: Every (key, value) pair must be among the device's labels.
    labels: tuple[tuple[str, str], ...] = ()
    min_severity: int = 0
    kinds: frozenset[str] = frozenset()

    def accepts(
        self, kind: str, device: str, severity: int, device_labels: Mapping[str, str]
    ) -> bool:
        if severity < self.min_severity:
            return False
        if self.kinds and kind not in self.kinds:
            return False
        if self.devices and device not in self.devices:
            return False
        return all(device_labels.get(key) == value for key, value in self.labels)
