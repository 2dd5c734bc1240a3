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
    #: VIGIL_MAX_IN_FLIGHT: the largest in-flight window a device is given (sent in Flow).
    max_in_flight: int
    #: VIGIL_DETECT_TIMEOUT_SECONDS: deadline of one call to the detector.
    detect_timeout_s: float
    #: VIGIL_EVENTS_MAXLEN: approximate cap of the vigil:events stream.
    events_maxlen: int
    #: VIGIL_HELLO_TIMEOUT_SECONDS: how long a new stream may wait before its Hello.
    hello_timeout_s: float
    #: VIGIL_IDLE_TIMEOUT_SECONDS: a stream with no message for this long is ended.
    idle_timeout_s: float
    #: VIGIL_MAX_STREAMS: device streams open at once on this replica.
    max_streams: int
    #: VIGIL_MAX_MESSAGE_BYTES: largest message a device may send.
    max_message_bytes: int
    #: VIGIL_DEVICE_MAX_READINGS_PER_SECOND: per-device rate (bursts of 2 s allowed).
    device_rate: float
    #: VIGIL_WINDOW_STRIKES: times a device may exceed its window before it is cut off.
    window_strikes: int
    #: VIGIL_FLOW_TARGET_SECONDS: arrival-to-ack latency above which windows shrink.
    flow_target_s: float
    #: VIGIL_KEEPALIVE_SECONDS: ingest pings idle connections this often.
    keepalive_s: float
    #: VIGIL_MIN_CLIENT_PING_SECONDS: clients pinging more often are disconnected.
    min_client_ping_s: float
    #: VIGIL_HISTORY_MAXLEN: approximate cap of each vigil:history:{device} stream.
    history_maxlen: int
    #: VIGIL_HISTORY_RESOLUTION_SECONDS: readings of one sensor closer than this are
    #: thinned out of the history (anomalous readings are always kept).
    history_resolution_s: float

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
            idle_timeout_s=env.number("VIGIL_IDLE_TIMEOUT_SECONDS", 300.0, lo=0.1, hi=86_400),
            max_streams=env.integer("VIGIL_MAX_STREAMS", 5000, lo=1, hi=1_000_000),
            max_message_bytes=env.integer(
                "VIGIL_MAX_MESSAGE_BYTES", 4 * 1024 * 1024, lo=1024, hi=64 * 1024 * 1024
            ),
            device_rate=env.number(
                "VIGIL_DEVICE_MAX_READINGS_PER_SECOND", 50_000.0, lo=1.0, hi=10_000_000
            ),
            window_strikes=env.integer("VIGIL_WINDOW_STRIKES", 3, lo=0, hi=1000),
            flow_target_s=env.number("VIGIL_FLOW_TARGET_SECONDS", 0.25, lo=0.001, hi=60),
            keepalive_s=env.number("VIGIL_KEEPALIVE_SECONDS", 30.0, lo=1.0, hi=3600),
            min_client_ping_s=env.number("VIGIL_MIN_CLIENT_PING_SECONDS", 10.0, lo=0.1, hi=3600),
            history_maxlen=env.integer("VIGIL_HISTORY_MAXLEN", 2000, lo=10, hi=1_000_000),
            history_resolution_s=env.number(
                "VIGIL_HISTORY_RESOLUTION_SECONDS", 1.0, lo=0.0, hi=3600
            ),
        )
