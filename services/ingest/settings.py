"""Ingest's settings, read once from the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.common.events import DEFAULT_EVENTS_MAXLEN
from services.common.settings import CommonSettings, Env, Secret


@dataclass(frozen=True, slots=True)
class IngestSettings:
    common: CommonSettings
    #: VIGIL_DEVICE_SECRET: hex key that device tokens are HMACs under (required).
    device_secret: Secret
    #: VIGIL_DETECTOR_ADDRS: comma-separated host:port of every detector shard.
    detector_addrs: tuple[str, ...]
    #: VIGIL_MAX_BATCH_READINGS: readings allowed in one batch.
    max_batch_readings: int
    #: VIGIL_MAX_IN_FLIGHT: unacknowledged batches a device may have (sent in Flow).
    max_in_flight: int
    #: VIGIL_DETECT_TIMEOUT_SECONDS: deadline of one call to the detector.
    detect_timeout_s: float
    #: VIGIL_EVENTS_MAXLEN: approximate cap of the vigil:events stream.
    events_maxlen: int
    #: VIGIL_HELLO_TIMEOUT_SECONDS: how long a new stream may wait before its Hello.
    hello_timeout_s: float

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> IngestSettings:
        env = Env(environ)
        return cls(
            common=CommonSettings.from_env(environ, "ingest", grpc_port=50051, metrics_port=9101),
            device_secret=env.hex_secret("VIGIL_DEVICE_SECRET", required=True),
            detector_addrs=env.items("VIGIL_DETECTOR_ADDRS", ("127.0.0.1:50052",)),
            max_batch_readings=env.integer("VIGIL_MAX_BATCH_READINGS", 1000, lo=1, hi=100_000),
            max_in_flight=env.integer("VIGIL_MAX_IN_FLIGHT", 16, lo=1, hi=1024),
            detect_timeout_s=env.number("VIGIL_DETECT_TIMEOUT_SECONDS", 5.0, lo=0.01, hi=120),
            events_maxlen=env.integer("VIGIL_EVENTS_MAXLEN", DEFAULT_EVENTS_MAXLEN, lo=100),
            hello_timeout_s=env.number("VIGIL_HELLO_TIMEOUT_SECONDS", 10.0, lo=0.1, hi=600),
        )
