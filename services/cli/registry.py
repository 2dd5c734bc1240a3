"""The services `vigil serve` can run: name -> (settings factory, app factory)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

SERVICES = ("ingest", "detector", "analyzer", "notifier")


def load(name: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """Import only the service asked for."""
    if name == "ingest":
        from services.ingest.server import IngestApp
        from services.ingest.settings import IngestSettings

        return IngestSettings.from_env, IngestApp
    if name == "detector":
        from services.detector.server import DetectorApp
        from services.detector.settings import DetectorSettings

        return DetectorSettings.from_env, DetectorApp
    if name == "analyzer":
        from services.analyzer.server import AnalyzerApp
        from services.analyzer.settings import AnalyzerSettings

        return AnalyzerSettings.from_env, AnalyzerApp
    if name == "notifier":
        from services.notifier.server import NotifierApp
        from services.notifier.settings import NotifierSettings

        return NotifierSettings.from_env, NotifierApp
    raise ValueError(f"unknown service {name!r}")
