"""The analyzer's settings, read once from the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.common.events import DEFAULT_EVENTS_MAXLEN
from services.common.settings import CommonSettings, Env


@dataclass(frozen=True, slots=True)
class AnalyzerSettings:
    common: CommonSettings
    #: VIGIL_ANALYZER_CONCURRENCY: jobs one replica works on at once.
    concurrency: int
    #: VIGIL_QUEUE_LEASE_SECONDS: how long a claimed job is reserved for its worker.
    lease_s: float
    #: VIGIL_QUEUE_MAX_ATTEMPTS: attempts before a job goes to the dead letters.
    max_attempts: int
    #: VIGIL_EVENTS_MAXLEN: approximate cap of the vigil:events stream.
    events_maxlen: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> AnalyzerSettings:
        env = Env(environ)
        return cls(
            common=CommonSettings.from_env(environ, "analyzer", grpc_port=50053, metrics_port=9103),
            concurrency=env.integer("VIGIL_ANALYZER_CONCURRENCY", 4, lo=1, hi=256),
            lease_s=env.number("VIGIL_QUEUE_LEASE_SECONDS", 60.0, lo=0.1, hi=3600),
            max_attempts=env.integer("VIGIL_QUEUE_MAX_ATTEMPTS", 5, lo=1, hi=100),
            events_maxlen=env.integer("VIGIL_EVENTS_MAXLEN", DEFAULT_EVENTS_MAXLEN, lo=100),
        )
