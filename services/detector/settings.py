"""The detector's settings, read once from the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from services.common.events import DEFAULT_EVENTS_MAXLEN
from services.common.settings import CommonSettings, Env


@dataclass(frozen=True, slots=True)
class DetectorSettings:
    common: CommonSettings
    #: VIGIL_RULES: the rules file; unset means the default rules shipped with Vigil.
    rules_path: Path | None
    #: VIGIL_GRPC_MAX_MESSAGE_BYTES: largest Detect request accepted.
    max_message_bytes: int
    #: VIGIL_DETECTOR_SHARD: this shard's name, for its vigil:state:{shard} snapshot
    #: (in Kubernetes the pod name, e.g. detector-2).
    shard: str
    #: VIGIL_SNAPSHOT_SECONDS: how often baselines are saved to Redis (and at shutdown).
    snapshot_s: float
    #: VIGIL_SWEEP_SECONDS: how often silent devices and series are looked for.
    sweep_s: float
    #: VIGIL_RULES_POLL_SECONDS: how often the rules file is checked for a change.
    rules_poll_s: float
    #: VIGIL_EVENTS_MAXLEN: approximate cap of vigil:events (for offline alerts).
    events_maxlen: int
    #: VIGIL_DETECTOR_IDLE_DEVICE_SECONDS: a device silent this long is forgotten.
    idle_device_s: float
    #: VIGIL_DETECTOR_RESULTS_KEPT: recent batch results kept per device, to answer
    #: resends identically; keep it at least twice ingest's VIGIL_MAX_IN_FLIGHT.
    results_kept: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> DetectorSettings:
        env = Env(environ)
        rules = env.raw("VIGIL_RULES")
        return cls(
            common=CommonSettings.from_env(environ, "detector", grpc_port=50052, metrics_port=9102),
            rules_path=Path(rules) if rules else None,
            max_message_bytes=env.integer(
                "VIGIL_GRPC_MAX_MESSAGE_BYTES", 32 * 1024 * 1024, lo=1024, hi=256 * 1024 * 1024
            ),
            shard=env.text("VIGIL_DETECTOR_SHARD", "0"),
            snapshot_s=env.number("VIGIL_SNAPSHOT_SECONDS", 30.0, lo=0.05, hi=86_400),
            sweep_s=env.number("VIGIL_SWEEP_SECONDS", 1.0, lo=0.01, hi=3600),
            rules_poll_s=env.number("VIGIL_RULES_POLL_SECONDS", 1.0, lo=0.01, hi=3600),
            events_maxlen=env.integer("VIGIL_EVENTS_MAXLEN", DEFAULT_EVENTS_MAXLEN, lo=100),
            idle_device_s=env.number(
                "VIGIL_DETECTOR_IDLE_DEVICE_SECONDS", 7 * 86_400.0, lo=60, hi=365 * 86_400
            ),
            results_kept=env.integer("VIGIL_DETECTOR_RESULTS_KEPT", 64, lo=1, hi=100_000),
        )
