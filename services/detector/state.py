"""What the detector remembers per device and per series, and its snapshot form.

A `Device` holds its series, its recent batch results (so a resent batch gets the same
answer without advancing anything twice), when its batches arrive (for the offline
rule) and its device-level episode. A `Series` holds the learned model, the rules that
apply to it, the state the rules need, its episode and its own arrival rhythm (for the
missing-data rule). `encode`/`decode` turn a device into JSON for `vigil:state:{shard}`
and back. No I/O here.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from services.detector.episodes import Episode
from services.detector.model import SeriesModel
from services.detector.rules.spec import SeriesRules, Silence

SNAPSHOT_VERSION = 1
CADENCE_STEP = 1.05  # multiplicative median tracker for arrival intervals
CADENCE_SAMPLES = 5  # intervals seen before a learned cadence is trusted
SPREAD_START = 1.5
SPREAD_TAIL = 0.005 / 0.995  # a multiplicative tracker of the 99.5th percentile
IRREGULAR_MARGIN = 2.0  # silence beyond twice the usual longest interval


@dataclass(slots=True)
class Rhythm:
    """When something arrives (detector clock): a robust median of the intervals, and
    how irregular they are (the 99.5th percentile of interval / median).

    An interval is the longer of the arrival interval and the one between the readings'
    own times (`stamp`): a device that resends a window of batches after a reconnect
    delivers them milliseconds apart, but they were taken its usual cadence apart, and
    learning the milliseconds would make the next ordinary pause an alert."""

    last: float = 0.0
    cadence: float = 0.0
    samples: int = 0
    spread: float = SPREAD_START
    stamp: float = 0.0  # the newest reading time seen (the device's clock)

    def arrived(self, now: float, stamp: float = 0.0) -> None:
        if self.last and now > self.last:
            interval = now - self.last
            if self.stamp and stamp > self.stamp:
                interval = max(interval, stamp - self.stamp)
            if self.cadence <= 0.0:
                self.cadence = interval
            else:
                ratio = interval / self.cadence
                if ratio > 1.0:
                    self.cadence *= CADENCE_STEP
                elif ratio < 1.0:
                    self.cadence /= CADENCE_STEP
                step = 0.1 if self.samples < 200 else 0.02
                if ratio > self.spread:
                    self.spread *= 1.0 + step
                else:
                    self.spread = max(1.0, self.spread * (1.0 - step * SPREAD_TAIL))
            self.samples += 1
        self.last = now
        self.stamp = max(self.stamp, stamp)

    def silence_limit(self, rule: Silence, tolerance: float) -> float | None:
        """Seconds of silence that break `rule`; None while the cadence is unknown.

        A rule in cadences stretches for irregular arrivals: a sensor that reports on
        events is silent for long stretches as a matter of course."""
        if rule.seconds is not None:
            return rule.limit_s(self.cadence, tolerance)
        if self.samples < CADENCE_SAMPLES or rule.cadences is None:
            return None
        cadences = max(rule.cadences, self.spread * IRREGULAR_MARGIN)
        return cadences * self.cadence * tolerance


@dataclass(slots=True)
class Series:
    sensor: str
    model: SeriesModel = field(default_factory=SeriesModel)
    rules: SeriesRules = field(default_factory=SeriesRules)
    generation: int = -1  # rules generation `rules` was resolved for
    model_floor: float = 2.0  # the lowest model level that makes a reading anomalous
    # What the rules need from earlier readings.
    stuck_value: float = math.nan
    stuck_since: float = 0.0
    stuck_count: int = 0
    episode: Episode = field(default_factory=Episode)
    arrivals: Rhythm = field(default_factory=Rhythm)
    silence: Episode = field(default_factory=Episode)  # the missing-data episode
    silence_tolerance: float = 1.0


@dataclass(slots=True)
class Device:
    device_id: str
    labels: dict[str, str] = field(default_factory=dict)
    series: dict[str, Series] = field(default_factory=dict)
    last_seq: int = 0
    results: OrderedDict[int, Any] = field(default_factory=OrderedDict)
    arrivals: Rhythm = field(default_factory=Rhythm)
    offline: Episode = field(default_factory=Episode)
    offline_rule: Silence | None = None
    generation: int = -1  # rules generation `offline_rule` was resolved for
    tolerance: float = 1.0  # operator feedback on offline alerts
    dirty: bool = True  # changed since the last snapshot


def _episode(e: Episode) -> list[Any]:
    return [e.id, e.peak, e.started, e.quiet, e.last_anomaly]


def _episode_from(raw: list[Any]) -> Episode:
    eid, peak, started, quiet, last = raw
    return Episode(str(eid), int(peak), float(started), int(quiet), float(last))


def _rhythm(now: float, raw: list[Any]) -> Rhythm:
    cadence, samples, spread = raw
    return Rhythm(now, float(cadence), int(samples), float(spread))


def encode(device: Device) -> str:
    """A device's learned state as JSON (no results cache: a snapshot is not a log)."""
    return json.dumps(
        {
            "v": SNAPSHOT_VERSION,
            "labels": device.labels,
            "last_seq": device.last_seq,
            "cadence": [device.arrivals.cadence, device.arrivals.samples, device.arrivals.spread],
            "offline": _episode(device.offline),
            "tolerance": device.tolerance,
            "series": {
                name: {
                    "model": s.model.to_state(),
                    "episode": _episode(s.episode),
                    "silence": _episode(s.silence),
                    "cadence": [s.arrivals.cadence, s.arrivals.samples, s.arrivals.spread],
                    "silence_tolerance": s.silence_tolerance,
                }
                for name, s in device.series.items()
            },
        },
        separators=(",", ":"),
    )


def decode(device_id: str, text: str, now: float) -> Device:
    """The device `encode` wrote; ValueError when it is not a snapshot of this version.

    Arrival clocks restart at `now`: time the detector was down is not silence."""
    try:
        raw = json.loads(text)
        if raw.get("v") != SNAPSHOT_VERSION:
            raise ValueError("snapshot version")
        device = Device(device_id, dict(raw["labels"]), last_seq=int(raw["last_seq"]))
        device.arrivals = _rhythm(now, raw["cadence"])
        device.offline = _episode_from(raw["offline"])
        device.tolerance = float(raw["tolerance"])
        for name, item in raw["series"].items():
            series = Series(str(name), SeriesModel.from_state(item["model"]))
            series.episode = _episode_from(item["episode"])
            series.silence = _episode_from(item["silence"])
            series.arrivals = _rhythm(now, item["cadence"])
            series.silence_tolerance = float(item["silence_tolerance"])
            device.series[series.sensor] = series
    except (KeyError, TypeError, IndexError, AttributeError, json.JSONDecodeError) as exc:
        raise ValueError(f"bad snapshot: {exc}") from None
    device.dirty = False
    return device
