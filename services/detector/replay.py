"""Back-testing: run the detector over a CSV of one series, a score per row.

Input: a header with `timestamp` and `value` columns (others are ignored), then one
row per reading. Timestamps are ISO 8601 (`2014-04-01 00:00:00`, `2014-04-01T00:00:00Z`,
with or without an offset; without one they are UTC) or Unix seconds. Output:
`timestamp,anomaly_score`, one row per input row in the same order, the timestamp
copied as written, the score in [0, 1]. The very engine the service runs scores each
row before the next is read, so a row's score depends only on the rows before it and
itself. A bad row stops the replay with its line number and leaves no output file.
"""

from __future__ import annotations

import csv
import math
import os
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from services.common.errors import ConfigError
from services.detector.engine import Detector
from services.detector.rules.spec import Rules

CHUNK = 1000  # rows per engine call: the engine still scores them one after another
PROGRESS_BYTES = 1_000_000  # files larger than this report progress
PROGRESS_EVERY_S = 1.0


def parse_time(text: str) -> float:
    """Unix seconds of an ISO 8601 timestamp (UTC unless it says otherwise) or a number."""
    raw = text.strip()
    try:
        number = float(raw)
    except ValueError:
        pass
    else:
        if math.isfinite(number):
            return number
        raise ValueError(raw)
    moment = datetime.fromisoformat(raw)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


class _Counting:
    """Lines of a text file, counting the characters read (for progress)."""

    def __init__(self, handle: TextIO) -> None:
        self.handle = handle
        self.read = 0

    def __iter__(self) -> Iterator[str]:
        for line in self.handle:
            self.read += len(line)
            yield line


def rows(path: Path, counter: _Counting) -> Iterator[tuple[str, float, float]]:
    """(timestamp as written, unix seconds, value) of each row; ConfigError on a bad one."""
    reader = csv.reader(counter)
    try:
        header = next(reader)
    except StopIteration:
        raise ConfigError(f"{path}: empty file; expected a header 'timestamp,value'") from None
    except csv.Error as exc:
        raise ConfigError(f"{path}:1: {exc}") from None
    names = [name.strip().lstrip("\ufeff").lower() for name in header]
    if "timestamp" not in names or "value" not in names:
        raise ConfigError(f"{path}:1: the header must name 'timestamp' and 'value' columns")
    t_col, v_col = names.index("timestamp"), names.index("value")
    width = max(t_col, v_col) + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ConfigError(f"{path}:{reader.line_num}: {exc}") from None
        line = reader.line_num
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) < width:
            raise ConfigError(f"{path}:{line}: expected {len(names)} columns, got {len(row)}")
        stamp, text = row[t_col], row[v_col]
        try:
            at = parse_time(stamp)
        except ValueError:
            raise ConfigError(
                f"{path}:{line}: timestamp {stamp!r} is not ISO 8601 (e.g. 2014-04-01 00:00:00)"
            ) from None
        try:
            value = float(text)
        except ValueError:
            raise ConfigError(f"{path}:{line}: value {text!r} is not a number") from None
        if not math.isfinite(value):
            raise ConfigError(f"{path}:{line}: value {text!r} is not finite")
        yield stamp, at, value


def replay(
    source: Path,
    target: Path,
    rules: Rules,
    *,
    sensor: str = "value",
    progress: TextIO | None = sys.stderr,
) -> int:
    """Score every row of `source` into `target`; returns the number of rows."""
    detector = Detector(rules)
    try:
        size = source.stat().st_size
        handle = source.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read: {exc.strerror}") from None
    partial = target.with_name(target.name + ".partial")
    started = time.monotonic()
    shown = started
    count = 0
    try:
        with handle, partial.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(["timestamp", "anomaly_score"])
            counter = _Counting(handle)
            chunk: list[tuple[str, float, float]] = []
            for row in rows(source, counter):
                chunk.append(row)
                if len(chunk) == CHUNK:
                    count += _score(detector, sensor, chunk, writer)
                    chunk = []
                    now = time.monotonic()
                    if (
                        progress is not None
                        and size > PROGRESS_BYTES
                        and now - shown >= PROGRESS_EVERY_S
                    ):
                        shown = now
                        share = counter.read / size if size else 1.0
                        print(f"replay: {share:.0%} ({count} rows)", file=progress, flush=True)
            count += _score(detector, sensor, chunk, writer)
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    if progress is not None and size > PROGRESS_BYTES:
        elapsed = time.monotonic() - started
        print(f"replay: {count} rows in {elapsed:.1f} s -> {target}", file=progress, flush=True)
    return count


def _score(
    detector: Detector,
    sensor: str,
    chunk: list[tuple[str, float, float]],
    writer: Any,  # csv.writer's type is private to typeshed
) -> int:
    scores: list[float] = []
    detector.process("replay", ((sensor, at, value) for _, at, value in chunk), scores=scores)
    for (stamp, _, _), score in zip(chunk, scores, strict=True):
        writer.writerow([stamp, f"{min(1.0, max(0.0, score)):.6f}"])
    return len(chunk)
