"""A labelled corpus of synthetic sensor series, generated reproducibly from a seed.

Each series is a realistic background (its own scale from 10^-2 to 10^5, Gaussian,
Laplace or Student-t noise, autocorrelation, optional slow wander, quantisation and
daily seasonality) with anomalies of one kind injected after its first quarter, each
labelled by a window of row indexes. Kinds: spike, level_shift, drift, stuck,
variance, missing (rows absent), seasonal (a daily pattern that breaks) and noisy
(heavy-tailed, no anomaly at all: only false alerts can happen there).

Plain data and `random.Random(seed)`: the same seed gives the same corpus on every
machine. It must never read files or the clock.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

KINDS = ("spike", "level_shift", "drift", "stuck", "variance", "missing", "seasonal", "noisy")
DAY_S = 86_400.0
START_S = 1_700_000_000.0


@dataclass(frozen=True, slots=True)
class Window:
    """Rows `start`..`end` (inclusive) are the anomaly; detecting early is best."""

    start: int
    end: int


@dataclass(slots=True)
class Series:
    name: str
    kind: str
    times: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    windows: list[Window] = field(default_factory=list)

    @property
    def days(self) -> float:
        return (self.times[-1] - self.times[0]) / DAY_S if len(self.times) > 1 else 0.0


@dataclass(slots=True)
class Background:
    """The normal behaviour of one series: value(i) = base + season(t) + noise."""

    rng: random.Random
    cadence: float
    level: float
    sigma: float  # standard deviation of the noise process (with autocorrelation)
    phi: float
    family: str
    amplitude: float
    business_hours: bool
    wander: float
    quantum: float

    def innovation(self, scale: float = 1.0) -> float:
        """One noise draw with unit variance, times `scale`."""
        if self.family == "laplace":
            draw = self.rng.expovariate(1.0) * self.rng.choice((-1.0, 1.0)) / math.sqrt(2)
        elif self.family == "student":
            # Student-t with 4 degrees of freedom, scaled to unit variance.
            chi = sum(self.rng.gauss(0, 1) ** 2 for _ in range(4))
            draw = self.rng.gauss(0, 1) / math.sqrt(chi / 4) / math.sqrt(2)
        else:
            draw = self.rng.gauss(0, 1)
        return draw * scale

    def season(self, t: float) -> float:
        if not self.amplitude:
            return 0.0
        phase = 2 * math.pi * ((t % DAY_S) / DAY_S)
        if self.business_hours:
            hour = (t % DAY_S) / 3600
            return self.amplitude * (1.0 if 8 <= hour < 18 else -0.6)
        return self.amplitude * (math.sin(phase) + 0.3 * math.sin(2 * phase + 1.0))


def _background(rng: random.Random, kind: str) -> Background:
    seasonal = kind == "seasonal" or (kind == "noisy" and rng.random() < 0.5)
    cadence = rng.choice((300.0, 600.0)) if seasonal else rng.choice((10.0, 60.0, 300.0))
    magnitude = 10 ** rng.uniform(-2, 5)
    level = magnitude * (1 if rng.random() < 0.85 else -1)
    phi = rng.choice((0.0, 0.3, 0.6, 0.85))
    sigma = magnitude * 10 ** rng.uniform(-3, -1)
    family = "student" if kind == "noisy" else rng.choice(("gauss", "gauss", "laplace", "student"))
    amplitude = sigma * rng.uniform(3, 10) if seasonal else 0.0
    quantum = sigma * rng.uniform(0.2, 0.8) if rng.random() < 0.3 else 0.0
    wander = sigma * 0.02 if rng.random() < 0.3 else 0.0
    return Background(
        rng,
        cadence,
        level,
        sigma,
        phi,
        family,
        amplitude,
        seasonal and rng.random() < 0.3,
        wander,
        quantum,
    )


def _positions(rng: random.Random, length: int, count: int, span: int) -> list[int]:
    """Non-overlapping anomaly starts after the first quarter, at least `span` apart."""
    lo, hi = length // 4, length - span - 10
    starts: list[int] = []
    for _ in range(200):
        if len(starts) == count:
            break
        at = rng.randrange(lo, hi)
        if all(abs(at - other) > 2 * span for other in starts):
            starts.append(at)
    return sorted(starts)


@dataclass(slots=True)
class Effects:
    """What the anomalies do to each row of the background."""

    offset: list[float]
    noise_gain: list[float]
    frozen: list[bool]
    absent: list[bool]
    flat_season: list[bool]

    @classmethod
    def none(cls, length: int) -> Effects:
        return cls(
            [0.0] * length, [1.0] * length, [False] * length, [False] * length, [False] * length
        )


def _spike(rng: random.Random, bg: Background, fx: Effects, at: int) -> tuple[int, int]:
    width = rng.randint(1, 3)
    sign = rng.choice((-1.0, 1.0))
    for i in range(at, at + width):
        fx.offset[i] += sign * rng.uniform(6, 12) * bg.sigma
    return at, at + width - 1


def _level_shift(rng: random.Random, bg: Background, fx: Effects, at: int) -> tuple[int, int]:
    size = rng.choice((-1.0, 1.0)) * rng.uniform(4, 8) * bg.sigma
    for i in range(at, len(fx.offset)):
        fx.offset[i] += size
    return at, at + 30


def _drift(rng: random.Random, bg: Background, fx: Effects, at: int) -> tuple[int, int]:
    ramp = rng.randint(200, 600)
    size = rng.choice((-1.0, 1.0)) * rng.uniform(5, 10) * bg.sigma
    for i in range(at, len(fx.offset)):
        fx.offset[i] += size * min(1.0, (i - at) / ramp)
    return at, at + ramp


def _stuck(rng: random.Random, bg: Background, fx: Effects, at: int) -> tuple[int, int]:
    width = rng.randint(30, 150)
    for i in range(at, at + width):
        fx.frozen[i] = True
    return at, at + width - 1


def _variance(rng: random.Random, bg: Background, fx: Effects, at: int) -> tuple[int, int]:
    width = rng.randint(50, 200)
    gain = rng.uniform(3, 5)
    for i in range(at, at + width):
        fx.noise_gain[i] = gain
    return at, at + width - 1


def _missing(rng: random.Random, bg: Background, fx: Effects, at: int) -> tuple[int, int]:
    # The rows are absent; the window is the first rows after the gap.
    width = rng.randint(15, 120)
    for i in range(at, at + width):
        fx.absent[i] = True
    return at + width, at + width + 2


def _seasonal(rng: random.Random, bg: Background, fx: Effects, at: int) -> tuple[int, int]:
    # The day's swing does not come: centre the break on the daily peak.
    length = len(fx.offset)
    width = rng.randint(36, 96)
    per_day = int(DAY_S / bg.cadence)
    peak = int(13 / 24 * per_day) if bg.business_hours else int(0.25 * per_day)
    begin = max(length // 4, at - (at % per_day) + peak - width // 2)
    end = min(length - 5, begin + width)
    for i in range(begin, end):
        fx.flat_season[i] = True
    return begin, end - 1


INJECT = {
    "spike": _spike,
    "level_shift": _level_shift,
    "drift": _drift,
    "stuck": _stuck,
    "variance": _variance,
    "missing": _missing,
    "seasonal": _seasonal,
}
SPAN = {"drift": 700, "variance": 250, "stuck": 200, "missing": 150}


def make_series(seed: int, kind: str, index: int, length: int = 4000) -> Series:
    """One labelled series of `kind`; the same arguments give the same series."""
    rng = random.Random(f"{seed}/{kind}/{index}")
    bg = _background(rng, kind)
    series = Series(f"{kind}-{index:02d}", kind)
    fx = Effects.none(length)
    count = 0 if kind == "noisy" else rng.randint(1, 3)
    spans = [
        INJECT[kind](rng, bg, fx, at) for at in _positions(rng, length, count, SPAN.get(kind, 200))
    ]
    noise = 0.0
    wander = 0.0
    innovation_scale = bg.sigma * math.sqrt(1 - bg.phi**2)
    last_value = bg.level
    row_of: dict[int, int] = {}
    for i in range(length):
        t = START_S + i * bg.cadence
        noise = bg.phi * noise + bg.innovation(innovation_scale * fx.noise_gain[i])
        if bg.wander:
            wander += bg.rng.gauss(0, bg.wander)
        season = 0.0 if fx.flat_season[i] else bg.season(t)
        value = bg.level + wander + season + noise + fx.offset[i]
        if bg.quantum:
            value = round(value / bg.quantum) * bg.quantum
        if fx.frozen[i]:
            value = last_value
        last_value = value
        if fx.absent[i]:
            continue
        row_of[i] = len(series.times)
        series.times.append(t)
        series.values.append(value)
    for begin, end in spans:
        rows = [row_of[i] for i in range(begin, end + 1) if i in row_of]
        if rows:
            series.windows.append(Window(rows[0], rows[-1]))
    return series


def generate(seed: int, per_kind: int = 8, length: int = 4000) -> list[Series]:
    """The whole corpus: `per_kind` series of every kind."""
    return [make_series(seed, kind, i, length) for kind in KINDS for i in range(per_kind)]
