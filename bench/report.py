"""The benchmark report: figures, the table printed for people, the JSON written for tools.

A `Figure` is one measured number with its unit, the baseline measured beside it in the
same run (and their ratio), the target it is held to (on the value or on the ratio) and
whether it was met, and the parameters that produced it. The JSON document follows
`bench/report.schema.json`; `validate` checks a document against it. This module
measures nothing and starts nothing.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal

SCHEMA_VERSION = 2
Op = Literal[">=", "<=", "<", ">"]


@dataclass(frozen=True, slots=True)
class Target:
    """`value` (or the ratio, when `of` is "ratio") must be `op` `bound`."""

    op: Op
    bound: float
    of: Literal["value", "ratio"] = "value"

    def met(self, value: float, ratio: float | None) -> bool | None:
        subject = value if self.of == "value" else ratio
        if subject is None or not math.isfinite(subject):
            return None
        if self.op == ">=":
            return subject >= self.bound
        if self.op == ">":
            return subject > self.bound
        if self.op == "<=":
            return subject <= self.bound
        return subject < self.bound

    def text(self, unit: str) -> str:
        if self.of == "ratio":
            return f"ratio {self.op} {self.bound:g}"
        return f"{self.op} {_number(self.bound)} {unit}"


@dataclass(slots=True)
class Figure:
    stage: str
    name: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str | None = None
    target: Target | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    samples: list[float] | None = None  # repeats within the run, when there were any

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0 or not math.isfinite(self.value):
            return None
        return self.value / self.baseline

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.target.met(self.value, self.ratio)

    def to_json(self) -> dict[str, Any]:
        ratio = self.ratio
        return {
            "stage": self.stage,
            "name": self.name,
            "value": _finite(self.value),
            "unit": self.unit,
            "baseline": None
            if self.baseline is None
            else {"name": self.baseline_name or "", "value": _finite(self.baseline)},
            "ratio": None if ratio is None else round(ratio, 4),
            "target": None
            if self.target is None
            else {
                "op": self.target.op,
                "value": self.target.bound,
                "of": self.target.of,
                "text": self.target.text(self.unit),
            },
            "met": self.met,
            "parameters": self.parameters,
            "samples": self.samples,
        }


def _finite(value: float) -> float | None:
    """JSON has no NaN or infinity: a figure that could not be measured is null."""
    return round(value, 6) if math.isfinite(value) else None


def _number(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def document(
    figures: list[Figure],
    *,
    machine: dict[str, Any],
    command: str,
    size: Literal["full", "quick", "smoke"],
    started: str,
    duration_s: float,
    stages: dict[str, float],
    errors: dict[str, str],
) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "command": command,
        "size": size,
        "started": started,
        "duration_s": round(duration_s, 1),
        "machine": machine,
        "stages": [
            {"stage": name, "seconds": round(seconds, 1), "error": errors.get(name)}
            for name, seconds in stages.items()
        ],
        "figures": [figure.to_json() for figure in figures],
    }


def table(figures: list[Figure]) -> str:
    """A Markdown table: one row per figure."""
    rows = [
        "| stage | figure | value | baseline (same run) | ratio | target | met |",
        "| --- | --- | ---: | --- | ---: | --- | --- |",
    ]
    for f in figures:
        baseline = "" if f.baseline is None else f"{_number(f.baseline)} ({f.baseline_name})"
        ratio = "" if f.ratio is None else f"{f.ratio:.2f}"
        target = "" if f.target is None else f.target.text(f.unit)
        met = {None: "", True: "yes", False: "**no**"}[f.met]
        rows.append(
            f"| {f.stage} | {f.name} | {_number(f.value)} {f.unit} | {baseline} | {ratio} "
            f"| {target} | {met} |"
        )
    return "\n".join(rows)


def schema() -> dict[str, Any]:
    text = resources.files("bench").joinpath("report.schema.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def validate(doc: Any) -> None:
    """Raise jsonschema.ValidationError unless `doc` follows the report schema."""
    import jsonschema

    jsonschema.validate(doc, schema(), cls=jsonschema.Draft202012Validator)
