"""How big a benchmark run is: `full` (the figures to quote), `quick` (CI-sized, the
figures still mean something) or `smoke` (every stage's code runs at the smallest size
that completes it; its figures mean little: it checks that the benchmark works)."""

from __future__ import annotations

import enum
from typing import TypeVar

T = TypeVar("T")


class Size(enum.Enum):
    FULL = "full"
    QUICK = "quick"
    SMOKE = "smoke"

    def pick(self, full: T, quick: T, smoke: T) -> T:
        """The parameter for this size."""
        return {Size.FULL: full, Size.QUICK: quick, Size.SMOKE: smoke}[self]

    @property
    def flag(self) -> str:
        """The command-line option that asks for this size ("" for full)."""
        return "" if self is Size.FULL else f" --{self.value}"
