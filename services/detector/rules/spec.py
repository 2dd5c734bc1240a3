"""What a rules file means, as plain frozen dataclasses, and which rules apply where.

A series (device, sensor) gets its rules in layers, most general first: `defaults`,
then `sensors.<name>`, then every override whose `match` fits the device (in file
order). Each rule kind (thresholds, rate_of_change, stuck, missing, model) is replaced
as a whole by the most specific layer that sets it; `off` removes it. The device's
`offline` rule layers the same way. No I/O; `resolve` is pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase

SEVERITY_NAMES = {1: "info", 2: "warning", 3: "critical"}
KINDS = ("thresholds", "rate_of_change", "stuck", "missing", "model")


@dataclass(frozen=True, slots=True)
class Threshold:
    severity: int
    above: float | None = None
    below: float | None = None

    def matches(self, value: float) -> bool:
        return (self.above is not None and value > self.above) or (
            self.below is not None and value < self.below
        )

    def reason(self, value: float) -> str:
        name = SEVERITY_NAMES[self.severity]
        if self.above is not None and value > self.above:
            return f"value {value:g} above {name} threshold {self.above:g}"
        return f"value {value:g} below {name} threshold {self.below:g}"


@dataclass(frozen=True, slots=True)
class RateOfChange:
    """|change| / elapsed, in units per `per_s` seconds, above `limit`."""

    limit: float
    per_s: float
    severity: int


@dataclass(frozen=True, slots=True)
class Stuck:
    """The value stayed within `tolerance` for `readings` readings or `seconds`."""

    severity: int
    readings: int | None = None
    seconds: float | None = None
    tolerance: float = 0.0


@dataclass(frozen=True, slots=True)
class Silence:
    """No data for `seconds`, or for `cadences` times the learned cadence."""

    severity: int
    seconds: float | None = None
    cadences: float | None = None

    def limit_s(self, cadence_s: float, tolerance: float = 1.0) -> float | None:
        """Seconds of silence that trigger it; None while the cadence is unknown."""
        if self.seconds is not None:
            return self.seconds * tolerance
        if cadence_s <= 0.0 or self.cadences is None:
            return None
        return self.cadences * cadence_s * tolerance

    def describe(self) -> str:
        if self.seconds is not None:
            return f"{self.seconds:g} s"
        return f"{self.cadences:g}× its usual interval"  # noqa: RUF001


@dataclass(frozen=True, slots=True)
class ModelLevels:
    """Model score at or above which a reading is info / warning / critical."""

    info: float | None = 0.7
    warning: float | None = 0.9
    critical: float | None = None

    def severity(self, score: float) -> int:
        if self.critical is not None and score >= self.critical:
            return 3
        if self.warning is not None and score >= self.warning:
            return 2
        if self.info is not None and score >= self.info:
            return 1
        return 0

    @property
    def lowest(self) -> float:
        levels = [v for v in (self.info, self.warning, self.critical) if v is not None]
        return min(levels) if levels else 2.0


MODEL_OFF = ModelLevels(None, None, None)


@dataclass(frozen=True, slots=True)
class Layer:
    """Rule kinds one place in the file sets; `cleared` names kinds set to `off`."""

    thresholds: tuple[Threshold, ...] | None = None
    rate_of_change: RateOfChange | None = None
    stuck: Stuck | None = None
    missing: Silence | None = None
    model: ModelLevels | None = None
    cleared: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class SeriesRules:
    """Everything that applies to one series, resolved."""

    thresholds: tuple[Threshold, ...] = ()
    rate_of_change: RateOfChange | None = None
    stuck: Stuck | None = None
    missing: Silence | None = None
    model: ModelLevels = field(default_factory=ModelLevels)


@dataclass(frozen=True, slots=True)
class Match:
    """Which devices an override is for: a glob on the id and label value globs."""

    device: str | None = None
    labels: tuple[tuple[str, str], ...] = ()

    def fits(self, device_id: str, labels: dict[str, str]) -> bool:
        if self.device is not None and not fnmatchcase(device_id, self.device):
            return False
        return all(
            key in labels and fnmatchcase(labels[key], pattern) for key, pattern in self.labels
        )


@dataclass(frozen=True, slots=True)
class Override:
    match: Match
    defaults: Layer = Layer()
    sensors: dict[str, Layer] = field(default_factory=dict)
    offline: Silence | None = None
    offline_cleared: bool = False


@dataclass(frozen=True, slots=True)
class Episodes:
    """An episode resolves after `quiet_readings` quiet readings spanning at least
    `quiet_seconds`; a reading is quiet when no rule fires and its score < `hold`."""

    quiet_readings: int = 5
    quiet_seconds: float = 0.0
    hold: float = 0.5


@dataclass(frozen=True, slots=True)
class Rules:
    defaults: Layer = Layer(model=ModelLevels())
    sensors: dict[str, Layer] = field(default_factory=dict)
    overrides: tuple[Override, ...] = ()
    episodes: Episodes = Episodes()
    offline: Silence | None = Silence(severity=2, cadences=5.0)

    def resolve(self, device_id: str, labels: dict[str, str], sensor: str) -> SeriesRules:
        """The rules of series (device_id, sensor) for a device with `labels`."""
        layers = [self.defaults]
        if sensor in self.sensors:
            layers.append(self.sensors[sensor])
        for override in self.overrides:
            if override.match.fits(device_id, labels):
                layers.append(override.defaults)
                if sensor in override.sensors:
                    layers.append(override.sensors[sensor])
        merged: dict[str, object] = {}
        for layer in layers:
            for kind in KINDS:
                value = getattr(layer, kind)
                if kind in layer.cleared:
                    merged.pop(kind, None)
                elif value is not None:
                    merged[kind] = value
        model = merged.get("model", MODEL_OFF)
        return SeriesRules(
            thresholds=merged.get("thresholds", ()),  # type: ignore[arg-type]
            rate_of_change=merged.get("rate_of_change"),  # type: ignore[arg-type]
            stuck=merged.get("stuck"),  # type: ignore[arg-type]
            missing=merged.get("missing"),  # type: ignore[arg-type]
            model=model if isinstance(model, ModelLevels) else MODEL_OFF,
        )

    def offline_for(self, device_id: str, labels: dict[str, str]) -> Silence | None:
        """The device-offline rule for a device, or None when it is off."""
        rule = self.offline
        for override in self.overrides:
            if override.match.fits(device_id, labels):
                if override.offline_cleared:
                    rule = None
                elif override.offline is not None:
                    rule = override.offline
        return rule
