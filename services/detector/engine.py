"""The detector's logic: a verdict for every reading, and the episodes they form.

`Detector.process` judges one batch of one device: for each reading the learned model
scores it, the series' rules check it, the two combine into a severity with readable
reasons, and its series' episode advances. A batch seen before (same device and seq)
gets its recorded outcome back and changes nothing, so a resend after an ingest crash
is harmless. `sweep` finds devices and series that went silent (offline / missing
data), which no batch can reveal. `false_alarm` widens a series' tolerance on
operator feedback.

Plain state and a clock you can drive: the gRPC server, `vigil replay` and the tests
feed it alike. No I/O. Only anomalies allocate objects; a normal reading costs a dict
lookup, the model's arithmetic and a few comparisons.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from services.detector.episodes import Change, Verdict, new_episode_id
from services.detector.model import duration
from services.detector.rules.spec import Rules
from services.detector.state import Device, Series

SEVERITY_SCORE = (0.0, 0.6, 0.8, 1.0)
RESULTS_KEPT = 64  # recent batch results per device: at least twice the in-flight window
FEEDBACK_FACTOR = 1.25  # each false alarm widens tolerance by this much...
FEEDBACK_MAX = 4.0  # ...up to this...
FEEDBACK_HALF_LIFE_S = 7 * 86_400.0  # ...and it relaxes back by half every week


@dataclass(slots=True)
class BatchOutcome:
    anomalies: list[Verdict] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    max_score: float = 0.0
    duplicate: bool = False  # the (device, seq) was judged before: this is that outcome
    sequence: str = ""  # "gap" or "regression" when seq did not follow the last one


class Detector:
    """Per-device and per-series state, and the rules that judge each reading."""

    def __init__(
        self,
        rules: Rules,
        new_id: Callable[[], str] = new_episode_id,
        clock: Callable[[], float] = time.time,
        results_kept: int = RESULTS_KEPT,
    ) -> None:
        self.rules = rules
        self.generation = 0
        self.new_id = new_id
        self.clock = clock
        self.results_kept = results_kept
        self.devices: dict[str, Device] = {}
        self._feedback_at = clock()

    def set_rules(self, rules: Rules) -> None:
        """Use `rules` from the next reading on; every series re-resolves lazily."""
        self.rules = rules
        self.generation += 1

    @property
    def series_count(self) -> int:
        return sum(len(d.series) for d in self.devices.values())

    def device(self, device_id: str, labels: dict[str, str] | None = None) -> Device:
        device = self.devices.get(device_id)
        if device is None:
            device = self.devices[device_id] = Device(device_id, dict(labels or {}))
        elif labels is not None and labels != device.labels:
            # Overrides may match differently now: re-resolve this device's rules.
            device.labels = dict(labels)
            device.generation = -1
            for series in device.series.values():
                series.generation = -1
        return device

    def process(  # noqa: PLR0912, PLR0915 - the per-reading loop, kept flat for speed
        self,
        device_id: str,
        readings: Iterable[tuple[str, float, float]],
        *,
        labels: dict[str, str] | None = None,
        seq: int = 0,
        scores: list[float] | None = None,
    ) -> BatchOutcome:
        """Judge (sensor, time, value) readings of one device, in order.

        `seq` > 0 makes the call idempotent per (device, seq); `scores`, when given,
        receives every reading's score (what `vigil replay` writes)."""
        device = self.device(device_id, labels)
        if seq:
            cached: BatchOutcome | float | None = device.results.get(seq)
            if isinstance(cached, float):
                return BatchOutcome(max_score=cached, duplicate=True)
            if cached is not None:
                return replace(cached, duplicate=True)
        outcome = BatchOutcome()
        if seq:
            if device.last_seq and seq <= device.last_seq:
                outcome.sequence = "regression"
            elif device.last_seq and seq > device.last_seq + 1:
                outcome.sequence = "gap"
            device.last_seq = max(device.last_seq, seq)
        now = self.clock()
        device.dirty = True
        if device.offline.id:
            silent = Verdict("", now, 0.0, 0.0, 0, ["reporting again"])
            outcome.changes.append(device.offline.resolve(silent))

        rules = self.rules
        generation = self.generation
        episodes = rules.episodes
        hold = episodes.hold
        quiet_readings = episodes.quiet_readings
        quiet_seconds = episodes.quiet_seconds
        all_series = device.series
        anomalies = outcome.anomalies
        changes = outcome.changes
        max_score = 0.0
        stamp = 0.0  # the batch's newest reading time, for the device's rhythm
        for sensor, t, x in readings:
            series = all_series.get(sensor)
            if series is None:
                series = all_series[sensor] = Series(sensor)
            if series.generation != generation:
                series.rules = rules.resolve(device_id, device.labels, sensor)
                series.model_floor = series.rules.model.lowest
                series.generation = generation
            model = series.model
            prev_t = model.t_last
            prev_x = model.x_last
            had_prev = model.n > 0
            score = model.observe(t, x)
            if series.model_floor > 1.0:
                score = 0.0  # the model is off for this series: it only learns
            if series.arrivals.last != now:
                series.arrivals.arrived(now, t)
                stamp = max(stamp, t)
            spec = series.rules
            model_severity = 0
            severity = 0
            reasons: list[str] | None = None  # the rules' reasons; the model's goes last
            if score >= series.model_floor:
                model_severity = severity = spec.model.severity(score)
            if spec.thresholds:
                for threshold in spec.thresholds:
                    if threshold.matches(x):
                        reasons = [threshold.reason(x)]
                        severity = max(severity, threshold.severity)
                        break
            rate = spec.rate_of_change
            if rate is not None and had_prev and t > prev_t:
                speed = abs(x - prev_x) / (t - prev_t) * rate.per_s
                if speed > rate.limit:
                    side = "rose" if x > prev_x else "fell"
                    reasons = _add(
                        reasons,
                        f"{side} {abs(x - prev_x):g} in {duration(t - prev_t)} "
                        f"(limit {rate.limit:g} per {duration(rate.per_s)})",
                    )
                    severity = max(severity, rate.severity)
            stuck = spec.stuck
            if stuck is not None:
                if abs(x - series.stuck_value) <= stuck.tolerance:
                    series.stuck_count += 1
                else:
                    series.stuck_value, series.stuck_since, series.stuck_count = x, t, 1
                count = series.stuck_count
                held = t - series.stuck_since
                if (stuck.readings is not None and count >= stuck.readings) or (
                    stuck.seconds is not None and count >= 2 and held >= stuck.seconds
                ):
                    reasons = _add(
                        reasons, f"unchanged at {series.stuck_value:g} for {count} readings"
                    )
                    severity = max(severity, stuck.severity)

            if severity:
                score = max(score, SEVERITY_SCORE[severity])
                if model_severity:
                    reasons = _add(reasons, model.explain(x))
                verdict = Verdict(sensor, t, x, score, severity, reasons or [])
                change = series.episode.anomalous(verdict, self.new_id)
                if change is not None:
                    changes.append(change)
                anomalies.append(verdict)
            elif series.episode.id:
                if score >= hold:
                    series.episode.quiet = 0  # hysteresis: still close to the alert level
                else:
                    verdict = Verdict(sensor, t, x, score, 0, [])
                    change = series.episode.quiet_reading(verdict, quiet_readings, quiet_seconds)
                    if change is not None:
                        changes.append(change)
            if series.silence.id:
                verdict = Verdict(sensor, t, x, score, 0, ["reporting again"])
                changes.append(series.silence.resolve(verdict))
            max_score = max(max_score, score)
            if scores is not None:
                scores.append(score)
        device.arrivals.arrived(now, stamp)
        outcome.max_score = max_score
        if seq:
            # Most batches are normal: keep just their max score (memory per device).
            quiet = not anomalies and not changes
            device.results[seq] = outcome.max_score if quiet else outcome
            if len(device.results) > self.results_kept:
                device.results.popitem(last=False)
        return outcome

    def sweep(self) -> list[tuple[Device, Change]]:
        """Open offline / missing-data episodes for what went silent (by the clock)."""
        now = self.clock()
        self._relax_feedback(now)
        opened: list[tuple[Device, Change]] = []
        rules = self.rules
        for device in self.devices.values():
            if device.generation != self.generation:
                device.offline_rule = rules.offline_for(device.device_id, device.labels)
                device.generation = self.generation
            rule = device.offline_rule
            if rule is not None and not device.offline.id:
                limit = device.arrivals.silence_limit(rule, device.tolerance)
                silent = now - device.arrivals.last
                if limit is not None and silent > limit:
                    reason = (
                        f"no data for {duration(silent)} "
                        f"(it usually reports every {duration(device.arrivals.cadence)})"
                    )
                    verdict = Verdict(
                        "", now, silent, SEVERITY_SCORE[rule.severity], rule.severity, [reason]
                    )
                    change = device.offline.anomalous(verdict, self.new_id)
                    if change is not None:
                        device.dirty = True
                        opened.append((device, change))
            if device.offline.id:
                continue  # the device is offline: that one alert covers its series
            for series in device.series.values():
                self._sweep_series(device, series, now, opened)
        return opened

    def _sweep_series(
        self, device: Device, series: Series, now: float, opened: list[tuple[Device, Change]]
    ) -> None:
        if series.generation != self.generation:
            series.rules = self.rules.resolve(device.device_id, device.labels, series.sensor)
            series.model_floor = series.rules.model.lowest
            series.generation = self.generation
        rule = series.rules.missing
        if rule is None or series.silence.id:
            return
        limit = series.arrivals.silence_limit(rule, series.silence_tolerance)
        silent = now - series.arrivals.last
        if limit is None or silent <= limit:
            return
        reason = (
            f"no {series.sensor} reading for {duration(silent)} "
            f"(it usually comes every {duration(series.arrivals.cadence)})"
        )
        verdict = Verdict(
            series.sensor, now, silent, SEVERITY_SCORE[rule.severity], rule.severity, [reason]
        )
        change = series.silence.anomalous(verdict, self.new_id)
        if change is not None:
            device.dirty = True
            opened.append((device, change))

    def false_alarm(self, device_id: str, sensor: str, episode_id: str) -> bool:
        """An operator called this alert a false alarm: widen what raised it.

        Returns False when this detector does not hold that series."""
        device = self.devices.get(device_id)
        if device is None:
            return False
        device.dirty = True
        if not sensor:
            device.tolerance = min(FEEDBACK_MAX, device.tolerance * FEEDBACK_FACTOR)
            return True
        series = device.series.get(sensor)
        if series is None:
            return False
        if episode_id and episode_id == series.silence.id:
            series.silence_tolerance = min(FEEDBACK_MAX, series.silence_tolerance * FEEDBACK_FACTOR)
        else:
            series.model.tolerance = min(FEEDBACK_MAX, series.model.tolerance * FEEDBACK_FACTOR)
        return True

    def _relax_feedback(self, now: float) -> None:
        elapsed = now - self._feedback_at
        if elapsed < 60.0:
            return
        self._feedback_at = now
        keep = math.pow(0.5, elapsed / FEEDBACK_HALF_LIFE_S)
        for device in self.devices.values():
            device.tolerance = 1.0 + (device.tolerance - 1.0) * keep
            for series in device.series.values():
                series.model.tolerance = 1.0 + (series.model.tolerance - 1.0) * keep
                series.silence_tolerance = 1.0 + (series.silence_tolerance - 1.0) * keep

    def forget_idle(self, idle_s: float) -> list[str]:
        """Drop devices silent for `idle_s`; returns their ids."""
        cutoff = self.clock() - idle_s
        gone = [d for d, device in self.devices.items() if device.arrivals.last < cutoff]
        for device_id in gone:
            del self.devices[device_id]
        return gone


def _add(reasons: list[str] | None, reason: str) -> list[str]:
    if reasons is None:
        return [reason]
    reasons.append(reason)
    return reasons
