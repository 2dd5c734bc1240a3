"""The evaluation behind `make eval`: the corpus is reproducible, the scoring counts what
it says, and a small run keeps the detector's quality above a floor and the baseline."""

from __future__ import annotations

from services.detector.evaluation.__main__ import VIGIL_ALERT, ZSCORE_ALERT, tally, vigil_scores
from services.detector.evaluation.baseline import zscore_scores
from services.detector.evaluation.corpus import KINDS, Series, Window, generate, make_series
from services.detector.evaluation.scoring import Tally, score_series


def test_same_seed_same_corpus_and_every_kind_is_labelled() -> None:
    a, b = make_series(3, "drift", 1), make_series(3, "drift", 1)
    assert (a.times, a.values, a.windows) == (b.times, b.values, b.windows)
    assert make_series(4, "drift", 1).values != a.values
    corpus = generate(5, per_kind=2, length=2000)
    assert {s.kind for s in corpus} == set(KINDS)
    for series in corpus:
        assert len(series.times) == len(series.values)
        assert all(0 <= w.start <= w.end < len(series.values) for w in series.windows)
        assert bool(series.windows) == (series.kind != "noisy")
    missing = [s for s in corpus if s.kind == "missing"]
    assert all(len(s.values) < 2000 for s in missing)  # rows really are absent


def series_with(windows: list[Window], rows: int = 1000) -> Series:
    return Series("s", "spike", [60.0 * i for i in range(rows)], [0.0] * rows, windows)


def test_scoring_counts_detections_delays_and_false_alerts() -> None:
    series = series_with([Window(200, 209), Window(500, 500)])
    scores = [0.0] * 1000
    scores[203] = scores[204] = 0.9  # detected 3 rows late
    scores[700] = scores[703] = 0.9  # one false alert (merged: within 5 rows)
    scores[900] = 0.9  # another
    scores[50] = 0.9  # in the unscored warm-up
    result = score_series(series, scores, 0.5)
    assert (result.windows, result.detected, result.false_alerts) == (2, 1, 2)
    assert result.delays == [3]
    assert result.precision == 1 / 3 and result.recall == 0.5
    assert abs(result.false_alerts_per_day - 2 / (999 * 60 / 86_400)) < 1e-9


def test_window_score_is_100_for_perfect_and_0_for_silent() -> None:
    series = series_with([Window(200, 209), Window(500, 520)])
    perfect = [0.0] * 1000
    perfect[200] = perfect[500] = 1.0
    assert score_series(series, perfect, 0.5).window_score == 100.0
    assert score_series(series, [0.0] * 1000, 0.5).window_score == 0.0
    late = [0.0] * 1000
    late[209] = late[520] = 1.0
    early = score_series(series, perfect, 0.5).earned
    assert score_series(series, late, 0.5).earned < early  # early detection earns more


def test_small_run_keeps_quality_and_beats_the_z_score_baseline() -> None:
    corpus = generate(11, per_kind=2, length=3000)
    vigil = Tally()
    zscore = Tally()
    for kind_tally in tally(corpus, vigil_scores, VIGIL_ALERT).values():
        vigil.add(kind_tally)
    for kind_tally in tally(corpus, lambda s: zscore_scores(s.values), ZSCORE_ALERT).values():
        zscore.add(kind_tally)
    assert vigil.recall is not None and vigil.recall >= 0.7
    assert vigil.false_alerts_per_day <= 0.3
    assert vigil.window_score is not None and zscore.window_score is not None
    assert vigil.window_score > zscore.window_score + 30
    assert vigil.false_alerts_per_day < zscore.false_alerts_per_day / 10
