"""The detector's settings, read once from the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from services.common.settings import CommonSettings, Env


@dataclass(frozen=True, slots=True)
class DetectorSettings:
    common: CommonSettings
    #: VIGIL_RULES: the rules file; unset means the default rules shipped with Vigil.
    rules_path: Path | None
    #: VIGIL_GRPC_MAX_MESSAGE_BYTES: largest Detect request accepted.
    max_message_bytes: int

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
        )
