"""The learned model of normal: one small online state per series, a score per reading.

No configuration and O(1) memory per series (a few dozen floats). Two forecasts watch
every reading:

- the local forecast: a damped-trend level plus a learned first-order autoregressive
  term, on deseasonalised values, updated with Huber-clipped errors so an outlier
  barely moves it. Its residual, over a robust scale, is the `point` surprise; a short
  average of signed residuals is the `sustained` one (level shifts); a short average
  of residual sizes against their long-run average is the `variance` one.
- the context forecast: a slow anchor plus a 24-bin daily profile (UTC time of day),
  fitted online. A smoothed residual against it, over the series' long-run spread,
  is the `context` surprise: slow drifts, and a day whose usual pattern does not come.
  The profile is used only once it explains the series better than the anchor alone.

Two more need no forecast: `stuck` (a run of identical values against how often this
series repeats itself) and `gap` (time since the previous reading against the learned
cadence).

Each surprise is in Gaussian sigma units. The short-term ones calibrate themselves: a
streaming quantile tracker learns the 99.5th percentile of the statistic on this
series (not from clear anomalies), so a heavy-tailed series must do more to surprise
than a quiet one, whatever its units. The largest surprise, divided by the operator
feedback tolerance and damped during warm-up, maps to a score in [0, 1] that is 0.5 at
5 sigma. A level shift is adopted once it has settled: the anchor jumps to the new
level, so a new normal stops being news.

Pure arithmetic on floats: no I/O, no clock, no allocation per reading (explanations
are built only on request, for anomalous readings). Never raises on finite input.
"""

from __future__ import annotations

import math
from typing import Any

POINT, SUSTAINED, VARIANCE, CONTEXT, STUCK, GAP = range(6)
KIND_NAMES = ("point", "sustained", "variance", "context", "stuck", "gap")

BINS = 48  # daily profile: half-hour bins, aligned to the clock (shift changes are)
BIN_S = 86_400.0 / BINS
Z_HALF = 5.0  # surprise (sigma) that scores 0.5
STEEPNESS = 6.0
Q_GAUSS = 2.807  # 99.5th percentile of |N(0, 1)|, what the trackers learn for Gaussian noise
TAIL = 0.005  # exceedance probability the trackers learn
Q95_GAUSS = 1.960  # and the 95th percentile, for the point detector's tail shape
TAIL95 = 0.05

ALPHA_LEVEL = 0.1
BETA_TREND = 0.1
PHI_TREND = 0.98
ALPHA_SCALE = 0.01
ALPHA_AR = 0.01
CLIP = 3.0
ALPHA_SUSTAINED = 0.25
ALPHA_VARIANCE = 0.1
ALPHA_CONTEXT = 0.05
ALPHA_SLOW = 0.002
ALPHA_SPREAD = 0.005
ALPHA_REPEAT = 0.005
SEASON_PER_DAY = 0.5
SEASON_AFTER_S = 2 * 86_400.0  # the profile needs two days before it is trusted
CONTEXT_SHARE = ALPHA_CONTEXT / (2.0 - ALPHA_CONTEXT)  # variance of an EWMA of white noise
ALPHA_DRIFT = 0.01
DRIFT_SHARE = ALPHA_DRIFT / (2.0 - ALPHA_DRIFT)
CONTEXT_LEARN_BELOW = 3.0
CONTEXT_ADOPT_AFTER = 60  # readings of context anomaly before the anchor follows fast
ALPHA_ADOPT = 0.02
CONTEXT_MIN_NOISE = 0.3  # a sustained offset under 1.5 spreads never scores 0.5
SHIFT_ADOPT = 2.0  # a settled level this many spreads from the anchor is adopted
FOLLOW_READINGS = 40
ALPHA_FOLLOW = 0.1
SHIFT_ON = 2.5
SHIFT_OFF = 1.0
SHIFT_JUMP = 5.0  # sustained surprise (sigma) at which the local level restarts at the value
LEARN_BELOW = 4.5  # readings this surprising do not teach the calibration
WARMUP = 30
FIRST_SCORED = 10
CONTEXT_WARMUP = 300
GAP_MIN = 3.0
GAP_Q_START = 1.5  # the interval quantile of a regular series: gaps count in full
STUCK_FADE_AFTER = 60
STUCK_FADE_OVER = 120
Z_LIMIT = 1e12
VALUE_LIMIT = 1e100  # beyond this a value is clamped: no physical sensor reads 1e100


STATE_VERSION = 1
# What a snapshot keeps: all learned state (not the last reading's explanation).
STATE_FIELDS = tuple(
    name
    for name in (
        "adopting",
        "anchor",
        "ar_cov",
        "ar_var",
        "b_prev",
        "bn_prev",
        "cadence",
        "calm",
        "context",
        "context_age",
        "context_var",
        "cz_var",
        "drift",
        "drift_var",
        "gap_q",
        "level",
        "n",
        "phi",
        "point_q",
        "point_q95",
        "repeat_p",
        "resolution",
        "run",
        "run_p",
        "scale",
        "scale_b",
        "season",
        "season_gain",
        "season_on",
        "shifting",
        "spread",
        "spread_plain",
        "sustained",
        "sustained_q",
        "t_first",
        "t_last",
        "tolerance",
        "trend",
        "variance",
        "variance_mean",
        "variance_q",
        "variance_q95",
        "x_last",
    )
)


def score_of(surprise: float) -> float:
    """Score in [0, 1] of a surprise in sigma units: 0.5 at 5 sigma, 0.88 at 7."""
    if surprise <= 0.01:  # below that the score underflows to 0 anyway
        return 0.0
    return 1.0 / (1.0 + math.pow(Z_HALF / surprise, STEEPNESS))


def surprise_of(score: float) -> float:
    """Inverse of `score_of`, for 0 < score < 1."""
    return Z_HALF / math.pow(1.0 / score - 1.0, 1.0 / STEEPNESS)


def duration(seconds: float) -> str:
    """A short human duration: `40 ms`, `2.5 s`, `45 s`, `10 min`, `3 h`, `2 d`."""
    for unit, size in (("d", 86_400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= size * 0.95:
            return f"{seconds / size:.0f} {unit}"
    if seconds < 0.095:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 9.95:
        return f"{seconds:.1f}".rstrip("0").rstrip(".") + " s"
    return f"{seconds:.0f} s"


class SeriesModel:
    """The learned normal behaviour of one series. `observe` returns the score."""

    __slots__ = (
        "adopting",
        "anchor",
        "ar_cov",
        "ar_var",
        "b_prev",
        "bn_prev",
        "cadence",
        "calm",
        "context",
        "context_age",
        "context_var",
        "cz_var",
        "drift",
        "drift_var",
        "gap_q",
        "kind",
        "level",
        "n",
        "phi",
        "point_q",
        "point_q95",
        "repeat_p",
        "resolution",
        "run",
        "run_p",
        "scale",
        "scale_b",
        "season",
        "season_gain",
        "season_on",
        "shifting",
        "spread",
        "spread_plain",
        "surprise",
        "sustained",
        "sustained_q",
        "t_first",
        "t_last",
        "tolerance",
        "trend",
        "variance",
        "variance_mean",
        "variance_q",
        "variance_q95",
        "x_last",
        "z",
    )

    def __init__(self) -> None:
        self.n = 0
        self.t_first = self.t_last = 0.0
        self.x_last = 0.0
        self.cadence = 0.0
        self.resolution = math.inf
        # Local forecast.
        self.level = self.trend = 0.0
        self.phi = 0.0
        self.ar_cov = self.ar_var = 0.0
        self.b_prev = self.bn_prev = 0.0
        self.scale = self.scale_b = 0.0
        self.sustained = 0.0
        self.variance = self.variance_mean = 0.8
        self.shifting = False
        self.adopting = 0
        self.calm = True
        # Context forecast.
        self.anchor = 0.0
        self.season = [0.0] * BINS
        self.season_on = False
        self.season_gain = 0.0
        self.spread = self.spread_plain = 0.0
        self.context = 0.0
        self.cz_var = self.context_var = 0.0
        self.drift = self.drift_var = 0.0
        self.context_age = 0
        # Stuck.
        self.run = 0
        self.repeat_p = self.run_p = 0.0
        # Calibration and feedback.
        self.point_q = Q_GAUSS
        self.point_q95 = Q95_GAUSS
        self.gap_q = GAP_Q_START
        self.sustained_q = 1.2
        self.variance_q = 1.19
        self.variance_q95 = 1.04
        self.tolerance = 1.0
        # What the last reading looked like, for explanations.
        self.kind = POINT
        self.surprise = 0.0
        self.z = 0.0

    def observe(self, t: float, x: float) -> float:  # noqa: PLR0912, PLR0915
        """Learn from reading (t, x) and return its anomaly score in [0, 1].

        One long function on purpose: it runs for every reading (hundreds of thousands
        a second), and locals are several times cheaper than calls and attributes.
        """
        if not -VALUE_LIMIT <= x <= VALUE_LIMIT:
            x = VALUE_LIMIT if x > 0.0 else -VALUE_LIMIT
        n = self.n
        if n < 8:
            return self._start(t, x, n)
        dt = t - self.t_last
        cadence = self.cadence
        gap = 0.0
        if dt > 0.0:
            if cadence <= 0.0:
                cadence = dt
            else:
                ratio = dt / cadence
                # Irregular series have long intervals all the time: judge a gap against
                # this series' own 99.5th percentile of intervals (learned from every
                # interval; a gap is one reading, it cannot teach much).
                gap_q = self.gap_q
                relative = ratio / (gap_q / GAP_Q_START if gap_q > GAP_Q_START else 1.0)
                if relative >= GAP_MIN:
                    gap = 3.5 + 2.0 * math.log2(relative / 2.0)
                step = 1.0 / math.sqrt(n) if n < 100 else 0.1 if n < 400 else 0.02
                self.gap_q = _track(gap_q, ratio, step, 1.0 - step * TAIL / (1.0 - TAIL), 1.0)
                # Sign-based median tracker: robust to gaps and jitter.
                if ratio > 1.0:
                    cadence *= 1.03
                elif ratio < 1.0:
                    cadence *= 0.97
            self.cadence = cadence

        # The daily profile at t.
        season = self.season
        i = int((t % 86_400.0) / BIN_S)
        s_val = season[i]
        plain = x - s_val if self.season_on else x

        # Local forecast: level + damped trend + AR(1) on the base residual.
        level = self.level
        trend = self.trend
        base = plain - level - PHI_TREND * trend
        b_prev = self.b_prev
        residual = base - self.phi * b_prev
        scale = self.scale
        floor = self.resolution * 0.5
        magnitude_floor = 1e-9 * abs(level) + 1e-30
        if floor < magnitude_floor or floor == math.inf:
            floor = magnitude_floor
        s_eff = scale if scale > floor else floor
        z = residual / s_eff
        z = Z_LIMIT if z > Z_LIMIT else (-Z_LIMIT if z < -Z_LIMIT else z)
        sb = self.scale_b if self.scale_b > s_eff else s_eff
        lim = CLIP * sb
        b_clip = lim if base > lim else (-lim if base < -lim else base)
        self.level = level + PHI_TREND * trend + ALPHA_LEVEL * b_clip
        self.trend = PHI_TREND * trend + ALPHA_LEVEL * BETA_TREND * b_clip
        # The AR coefficient from scale-free residuals (bounded, whatever the units).
        bn = b_clip / sb
        bn_prev = self.bn_prev
        self.ar_cov += ALPHA_AR * (bn * bn_prev - self.ar_cov)
        self.ar_var += ALPHA_AR * (bn_prev * bn_prev - self.ar_var)
        if self.ar_var > 0.0:
            phi = self.ar_cov / self.ar_var
            self.phi = 0.95 if phi > 0.95 else (-0.5 if phi < -0.5 else phi)
        self.b_prev = b_clip
        self.bn_prev = bn

        # Sustained and variance: short averages of the residual, in sigma units.
        zc = 6.0 if z > 6.0 else (-6.0 if z < -6.0 else z)
        sustained = self.sustained + ALPHA_SUSTAINED * (zc - self.sustained)
        self.sustained = sustained
        az = zc if zc >= 0.0 else -zc
        variance = self.variance + ALPHA_VARIANCE * (az - self.variance)
        self.variance = variance
        abs_sustained = sustained if sustained >= 0.0 else -sustained
        if abs_sustained > SHIFT_JUMP:
            # Several large residuals of one sign in a row: the level has moved. Clipped
            # updates would take hundreds of readings to follow a jump of many spreads
            # (every one of them scored as a fresh surprise); restart the local forecast
            # at the new level instead. `sustained` still reports the shift.
            self.level = plain
            self.trend = 0.0
            self.b_prev = self.bn_prev = 0.0

        # Context forecast: slow anchor plus the daily profile. Slow averages start
        # as plain running means, so they are right from the first day; they do not
        # learn while the context is surprising, or a drift would teach them itself.
        slow = 1.0 / n if n * ALPHA_SLOW < 1.0 else ALPHA_SLOW
        spread_rate = 1.0 / n if n * ALPHA_SPREAD < 1.0 else ALPHA_SPREAD
        anchor = self.anchor
        plain_all = x - s_val
        deviation = x - anchor
        context_residual = deviation - s_val
        spread = self.spread if self.spread > s_eff else s_eff
        spread_plain = self.spread_plain if self.spread_plain > s_eff else s_eff
        cz = context_residual / spread if self.season_on else deviation / spread_plain
        cz = 6.0 if cz > 6.0 else (-6.0 if cz < -6.0 else cz)
        context = self.context + ALPHA_CONTEXT * (cz - self.context)
        drift = self.drift + ALPHA_DRIFT * (cz - self.drift)
        if self.adopting:
            context = drift = 0.0
        self.context = context
        self.drift = drift
        noise2 = self.cz_var * CONTEXT_SHARE
        noise2 = max(noise2, self.context_var)
        noise = math.sqrt(noise2) if noise2 > CONTEXT_MIN_NOISE**2 else CONTEXT_MIN_NOISE
        ctx = (context if context >= 0.0 else -context) / noise
        noise2 = self.cz_var * DRIFT_SHARE
        noise2 = max(noise2, self.drift_var)
        noise = math.sqrt(noise2) if noise2 > CONTEXT_MIN_NOISE**2 else CONTEXT_MIN_NOISE
        drifting = (drift if drift >= 0.0 else -drift) / noise
        ctx = max(ctx, drifting)
        if ctx < CONTEXT_LEARN_BELOW or n < CONTEXT_WARMUP:
            self.context_age = 0
            size = 1.2533 * abs(context_residual)
            cap = CLIP * spread
            self.spread += spread_rate * ((size if size < cap else cap) - self.spread)
            size = 1.2533 * abs(deviation)
            cap = CLIP * spread_plain
            self.spread_plain += spread_rate * ((size if size < cap else cap) - self.spread_plain)
            # How noisy the average is: it depends on how autocorrelated the series is.
            self.cz_var += slow * (cz * cz - self.cz_var)
            self.context_var += slow * (context * context - self.context_var)
            self.drift_var += slow * (drift * drift - self.drift_var)
        else:
            self.context_age += 1
        gamma = SEASON_PER_DAY * (cadence / BIN_S if cadence < BIN_S else 1.0)
        # Until the profile is trusted, it may learn the whole daily swing.
        lim = CLIP * (spread if self.season_on else spread_plain)
        e = context_residual
        e = lim if e > lim else (-lim if e < -lim else e)
        season[i] += gamma * e
        # A context anomaly that lasts becomes the new normal; so does a level shift
        # once it has settled away from the anchor (the anchor then follows quickly).
        if self.adopting:
            self.adopting -= 1
            adopt = ALPHA_FOLLOW
        else:
            adopt = slow if self.context_age < CONTEXT_ADOPT_AFTER else ALPHA_ADOPT
        self.anchor = anchor + adopt * (plain_all - anchor)
        # A settled shift is adopted: checked when the shift ends. While the daily
        # profile is still being learned, a daily step also looks like a settled shift,
        # and an anchor that chased every one would leave the profile nothing to learn:
        # then only a shift whose context anomaly has lasted is adopted (checked again
        # when it has lasted long enough).
        ended = self.shifting and abs_sustained < SHIFT_OFF
        if abs_sustained > SHIFT_ON:
            self.shifting = True
        elif ended:
            self.shifting = False
        learning = t - self.t_first < SEASON_AFTER_S
        lasted = self.context_age >= CONTEXT_ADOPT_AFTER
        check = ended or (learning and self.context_age == CONTEXT_ADOPT_AFTER)
        if check and not self.shifting and not self.adopting and (lasted or not learning):
            limit = SHIFT_ADOPT * (spread if self.season_on else spread_plain)
            if abs(self.level - anchor) > limit:
                self.adopting = FOLLOW_READINGS
                self.context = 0.0
        if n % 64 == 0:
            self._recentre_season(i)

        # Stuck: a run of identical values against this series' repeat rate.
        # The rate is judged as it was when the run began; a run that lasts fades (a
        # flat stretch becomes normal; the rules' `stuck` is for sensors that must move).
        if x == self.x_last:
            if not self.run:
                self.run_p = self.repeat_p
            self.run += 1
            self.repeat_p += ALPHA_REPEAT * (1.0 - self.repeat_p)
        else:
            self.run = 0
            self.repeat_p -= ALPHA_REPEAT * self.repeat_p
            step = abs(x - self.x_last)
            self.resolution = min(self.resolution, step)
        stuck = 0.0
        run = self.run
        if run >= 2 and n - run > WARMUP:
            p = self.run_p if self.run_p > 1e-3 else 1e-3
            stuck = math.sqrt(2.0 * run * -math.log(p))
            if run > STUCK_FADE_AFTER:
                stuck *= max(0.0, 1.0 - (run - STUCK_FADE_AFTER) / STUCK_FADE_OVER)

        # Each short-term statistic against its own learned 99.5th percentile.
        # Point: linear in |z| up to the learned 99.5th percentile, then extrapolated
        # with the spacing between the 95th and 99.5th: the identity for Gaussian
        # noise, gentler for heavy tails (where big residuals are less rare).
        abs_z = z if z >= 0.0 else -z
        point_q = self.point_q
        if abs_z <= point_q:
            point = abs_z * Q_GAUSS / point_q
        else:
            spacing = point_q - self.point_q95
            spacing = spacing if spacing > 0.3 else 0.3
            point = Q_GAUSS + (abs_z - point_q) * (Q_GAUSS - Q95_GAUSS) / spacing
        sus = abs_sustained * Q_GAUSS / self.sustained_q
        # Variance: an average of sizes has a long right tail; like the point detector,
        # extrapolate past the learned 99.5th percentile with its 95th-99.5th spacing,
        # The gentler of that and a straight line through the mean and the 99.5th.
        variance_q = self.variance_q
        width = variance_q - self.variance_mean
        slope = Q_GAUSS / (width if width > 0.05 else 0.05)
        if variance <= variance_q:
            var = (variance - self.variance_mean) * slope
        else:
            spacing = variance_q - self.variance_q95
            tail = (Q_GAUSS - Q95_GAUSS) / (spacing if spacing > 0.05 else 0.05)
            var = Q_GAUSS + (variance - variance_q) * (tail if tail < slope else slope)
        if n < CONTEXT_WARMUP:
            ctx *= n / CONTEXT_WARMUP

        kind, best = POINT, point
        if sus > best:
            kind, best = SUSTAINED, sus
        if var > best:
            kind, best = VARIANCE, var
        if ctx > best:
            kind, best = CONTEXT, ctx
        if stuck > best:
            kind, best = STUCK, stuck
        if gap > best:
            kind, best = GAP, gap
        best /= self.tolerance
        if n < WARMUP:
            best *= 0.0 if n < FIRST_SCORED else n / WARMUP

        # Scales learn slowly from anomalies (a new regime is eventually accepted, a
        # stuck sensor does not shrink them much); calibration not at all.
        rate = 1.0 / n if n * ALPHA_SCALE < 1.0 else ALPHA_SCALE  # a plain mean at first
        if best >= LEARN_BELOW:
            rate *= 0.25
        cap = CLIP * (scale if scale > self.resolution else self.resolution)
        size = 1.2533 * abs_z * s_eff
        self.scale = scale + rate * ((size if size < cap else cap) - scale)
        size = 1.2533 * abs(base)
        cap = CLIP * sb
        self.scale_b += rate * ((size if size < cap else cap) - self.scale_b)
        # The first reading of an anomalous stretch teaches too: an anomaly that keeps
        # coming back (a nightly job's burst) becomes normal; a long one cannot
        # inflate the calibration reading after reading.
        calm = best < LEARN_BELOW
        if calm or n < 100 or self.calm:
            eta = 1.0 / math.sqrt(n) if n < 2500 else 0.02
            eta = 0.1 if eta > 0.1 else eta
            down = 1.0 - eta * TAIL / (1.0 - TAIL)
            down95 = 1.0 - eta * TAIL95 / (1.0 - TAIL95)
            self.point_q = _track(self.point_q, abs_z, eta, down, 2.0)
            self.point_q95 = _track(self.point_q95, abs_z, eta, down95, 1.2)
            self.sustained_q = _track(self.sustained_q, abs_sustained, eta, down, 0.6)
            self.variance_q = _track(self.variance_q, variance, eta, down, 1.0)
            self.variance_q95 = _track(self.variance_q95, variance, eta, down95, 0.9)
            self.variance_mean += slow * (variance - self.variance_mean)
        self.calm = calm

        self.n = n + 1
        self.t_last = t
        self.x_last = x
        self.kind = kind
        self.surprise = best
        self.z = z
        return score_of(best)

    def to_state(self) -> list[Any]:
        """Everything learned, as JSON-ready values (for snapshots)."""
        return [STATE_VERSION, *(getattr(self, name) for name in STATE_FIELDS)]

    @classmethod
    def from_state(cls, state: list[Any]) -> SeriesModel:
        """The model `to_state` described; ValueError when the state is not one."""
        if not state or state[0] != STATE_VERSION or len(state) != len(STATE_FIELDS) + 1:
            raise ValueError("not a model state of this version")
        model = cls()
        for name, raw in zip(STATE_FIELDS, state[1:], strict=True):
            expected = type(getattr(model, name))
            value = float(raw) if expected is float and type(raw) is int else raw
            if type(value) is not expected or (expected is list and len(raw) != BINS):
                raise ValueError(f"bad {name} in model state")
            setattr(model, name, value)
        return model

    def _recentre_season(self, bin_now: int) -> None:
        """Keep the profile's mean at zero (the anchor holds the level), and decide
        whether it explains the series better than the anchor alone.

        The local forecast works on values with the profile taken out once it is on, so
        every change to what is taken out moves its level by the same amount: otherwise
        switching the profile on at a daily peak reads as a sudden drop.
        """
        season = self.season
        mean = sum(season) / BINS
        for k in range(BINS):
            season[k] -= mean
        self.anchor += mean
        was_on = self.season_on
        if was_on:
            self.level += mean
        # The profile is worth using when it removes a third of the spread.
        self.season_gain = 1.0 - self.spread / self.spread_plain if self.spread_plain else 0.0
        enough = self.t_last - self.t_first >= SEASON_AFTER_S
        self.season_on = enough and self.season_gain > (0.25 if was_on else 0.35)
        if self.season_on != was_on:
            self.level += -season[bin_now] if self.season_on else season[bin_now]

    def _start(self, t: float, x: float, n: int) -> float:
        """The first readings: plain averages give both forecasts a starting point."""
        if n == 0:
            self.t_first = t
            self.level = self.anchor = x
        else:
            step = abs(x - self.x_last)
            self.scale += (1.2533 * step / math.sqrt(2.0) - self.scale) / n
            if 0.0 < step < self.resolution:
                self.resolution = step
            if x == self.x_last:
                self.run += 1
                self.repeat_p += (1.0 - self.repeat_p) / n
            else:
                self.run = 0
                self.repeat_p -= self.repeat_p / n
            if t > self.t_last:
                dt = t - self.t_last
                self.cadence = dt if self.cadence <= 0.0 else min(self.cadence, dt)
            self.level += (x - self.level) / (n + 1)
            self.anchor = self.level
        self.scale_b = self.spread = self.spread_plain = self.scale
        self.n = n + 1
        self.t_last = t
        self.x_last = x
        self.surprise = 0.0
        return 0.0

    def explain(self, value: float) -> str:
        """Why the last reading scored what it did, for a human."""
        cadence = self.cadence if self.cadence > 0.0 else 1.0
        kind = self.kind
        if kind == POINT:
            side = "above" if self.z >= 0 else "below"
            baseline = duration(cadence / ALPHA_LEVEL)
            return f"{abs(self.z):.1f}σ {side} its {baseline} baseline"  # noqa: RUF001
        if kind == SUSTAINED:
            side = "above" if self.sustained >= 0 else "below"
            return f"level shifted {abs(self.sustained):.1f}σ {side} its recent baseline"  # noqa: RUF001
        if kind == VARIANCE:
            ratio = (self.variance / max(self.variance_mean, 1e-9)) ** 2
            return f"variance {ratio:.1f}× its usual"  # noqa: RUF001
        if kind == CONTEXT:
            side = "above" if self.context >= 0 else "below"
            what = "its usual level at this time of day" if self.season_on else "its long-run level"
            return f"{abs(self.context):.1f}σ {side} {what} ({self.anchor:.4g})"  # noqa: RUF001
        if kind == STUCK:
            return (
                f"stuck at {value:g} for {self.run + 1} readings "
                f"(it repeats {self.run_p:.0%} of the time)"
            )
        return f"first reading after a gap (it usually reports every {duration(cadence)})"


def _track(q: float, stat: float, eta: float, down: float, lowest: float) -> float:
    """One step of a multiplicative quantile tracker, kept above `lowest`."""
    q = q * (1.0 + eta) if stat > q else q * down
    return q if q > lowest else lowest
