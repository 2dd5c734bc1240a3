"""The arguments of `vigil bench` (and `python -m bench`), apart from the stages
themselves so that building the `vigil` command's parser imports nothing heavy."""

from __future__ import annotations

import argparse
from pathlib import Path

STAGES = ("detector", "queue", "cache", "ratelimit", "memory", "ingest", "dashboard", "fanout")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quick", action="store_true", help="smaller runs, under 2 minutes (CI-sized)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    parser.add_argument(
        "--stage",
        action="append",
        choices=STAGES,
        default=None,
        help="run only this stage (repeatable; default: all, in this order)",
    )
