"""`python -m services.detector.evaluation` (`make eval`): the quality table.

Generates the labelled corpus from a seed, scores every series with Vigil's detector
(the engine `vigil replay` runs, with the shipped default rules) and with the plain
z-score baseline in the same run, and prints precision, recall, median detection delay,
false alerts per day and the window score per anomaly kind, as a Markdown table. Same
seed, same table. Prints only; writes no file.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from services.detector.engine import Detector
from services.detector.evaluation.baseline import zscore_scores
from services.detector.evaluation.corpus import KINDS, Series, generate
from services.detector.evaluation.scoring import Tally, score_series
from services.detector.rules.parse import load

VIGIL_ALERT = 0.7  # the default model level at which the service raises an alert
ZSCORE_ALERT = 0.5  # |z| >= 3


def vigil_scores(series: Series) -> list[float]:
    detector = Detector(load(None))
    scores: list[float] = []
    detector.process(
        "eval",
        (("value", t, v) for t, v in zip(series.times, series.values, strict=True)),
        scores=scores,
    )
    return scores


def tally(
    corpus: list[Series], scorer: Callable[[Series], list[float]], threshold: float
) -> dict[str, Tally]:
    by_kind = {kind: Tally() for kind in KINDS}
    for series in corpus:
        by_kind[series.kind].add(score_series(series, scorer(series), threshold))
    return by_kind


def _fmt(value: float | None, spec: str = ".2f") -> str:
    return "n/a" if value is None else format(value, spec)


def table(vigil: dict[str, Tally], zscore: dict[str, Tally]) -> str:
    head = (
        "| kind | windows | Vigil precision | recall | delay | false/day | score "
        "| z-score precision | recall | delay | false/day | score |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
    )
    rows = []
    total_v, total_z = Tally(), Tally()
    for kind in [*KINDS, "all"]:
        if kind == "all":
            v, z = total_v, total_z
        else:
            v, z = vigil[kind], zscore[kind]
            total_v.add(v)
            total_z.add(z)
        cells = [f"**{kind}**" if kind == "all" else kind, str(v.windows)]
        for t in (v, z):
            cells += [
                _fmt(t.precision),
                _fmt(t.recall),
                _fmt(t.median_delay, ".0f"),
                _fmt(t.false_alerts_per_day),
                _fmt(t.window_score, ".0f"),
            ]
        rows.append("| " + " | ".join(cells) + " |")
    return head + "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.detector.evaluation")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--per-kind", type=int, default=12, help="series per anomaly kind")
    parser.add_argument("--length", type=int, default=5000, help="readings per series")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    corpus = generate(args.seed, args.per_kind, args.length)
    readings = sum(len(s.values) for s in corpus)
    vigil = tally(corpus, vigil_scores, VIGIL_ALERT)
    zscore = tally(corpus, lambda s: zscore_scores(s.values), ZSCORE_ALERT)
    print(
        f"Corpus: seed {args.seed}, {len(corpus)} series, {readings} readings; "
        f"Vigil alerts at score >= {VIGIL_ALERT}, z-score at |z| >= 3 "
        f"(window {100}). Delay in readings (median).\n"
    )
    print(table(vigil, zscore))
    print(f"\n({time.perf_counter() - started:.1f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
