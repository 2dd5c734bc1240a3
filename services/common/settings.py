"""Reading configuration from the environment, strictly.

Each service builds one settings object with `Settings.from_env(environ)` at start-up and
passes it down; nothing reads `os.environ` anywhere else. A bad value raises
`ConfigError` naming the variable, which stops the service with that one line. Secrets
are `Secret`, whose repr and str are `***`, so a settings object can be logged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from services.common.errors import ConfigError

T = TypeVar("T")


class Secret:
    """A value that never prints. `reveal()` is the only way to read it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class Env:
    """Typed, strict access to an environment mapping."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def raw(self, name: str) -> str | None:
        value = self._environ.get(name)
        return None if value is None or value.strip() == "" else value.strip()

    def text(self, name: str, default: str) -> str:
        value = self.raw(name)
        return default if value is None else value

    def integer(
        self, name: str, default: int, *, lo: int | None = None, hi: int | None = None
    ) -> int:
        value = self.raw(name)
        if value is None:
            return default
        try:
            parsed = int(value, 10)
        except ValueError:
            raise ConfigError(f"{name}={value!r} is not an integer") from None
        return _bounded(name, parsed, lo, hi)

    def number(
        self, name: str, default: float, *, lo: float | None = None, hi: float | None = None
    ) -> float:
        value = self.raw(name)
        if value is None:
            return default
        try:
            parsed = float(value)
        except ValueError:
            raise ConfigError(f"{name}={value!r} is not a number") from None
        if not math.isfinite(parsed):
            raise ConfigError(f"{name}={value!r} is not a finite number")
        return _bounded(name, parsed, lo, hi)

    def flag(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{name}={value!r} is not a boolean (true/false)")

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.text(name, default).lower()
        if value not in choices:
            raise ConfigError(f"{name}={value!r} must be one of {', '.join(choices)}")
        return value

    def items(self, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self.raw(name)
        if value is None:
            return default
        return tuple(part.strip() for part in value.split(",") if part.strip())

    def secret(self, name: str, default: str = "") -> Secret:
        value = self.raw(name)
        return Secret(default if value is None else value)

    def hex_secret(self, name: str, *, required: bool, min_bytes: int = 16) -> Secret:
        """A hex-encoded key of at least `min_bytes` bytes."""
        value = self.raw(name)
        if value is None:
            if required:
                raise ConfigError(f"{name} is not set (a hex key of at least {min_bytes} bytes)")
            return Secret("")
        try:
            key = bytes.fromhex(value)
        except ValueError:
            raise ConfigError(f"{name} is not valid hex") from None
        if len(key) < min_bytes:
            raise ConfigError(f"{name} is too short: {len(key)} bytes, need {min_bytes}")
        return Secret(value.lower())


def _bounded(name: str, value: T, lo: T | None, hi: T | None) -> T:
    if lo is not None and value < lo:  # type: ignore[operator]
        raise ConfigError(f"{name}={value} is below the minimum {lo}")
    if hi is not None and value > hi:  # type: ignore[operator]
        raise ConfigError(f"{name}={value} is above the maximum {hi}")
    return value


@dataclass(frozen=True, slots=True)
class CommonSettings:
    """What every service reads: where Redis is, where to listen, how to log."""

    service: str
    redis_url: Secret
    host: str
    grpc_port: int
    metrics_port: int
    log_format: str
    log_level: str
    shutdown_grace_s: float

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str], service: str, *, grpc_port: int, metrics_port: int
    ) -> CommonSettings:
        env = Env(environ)
        return cls(
            service=service,
            redis_url=env.secret("REDIS_URL", "redis://127.0.0.1:6379/0"),
            host=env.text("VIGIL_HOST", "127.0.0.1"),
            grpc_port=env.integer("VIGIL_GRPC_PORT", grpc_port, lo=0, hi=65535),
            metrics_port=env.integer("VIGIL_METRICS_PORT", metrics_port, lo=0, hi=65535),
            log_format=env.choice("VIGIL_LOG_FORMAT", "text", ("text", "json")),
            log_level=env.choice(
                "VIGIL_LOG_LEVEL", "info", ("debug", "info", "warning", "error")
            ).upper(),
            shutdown_grace_s=env.number("VIGIL_SHUTDOWN_GRACE_SECONDS", 10.0, lo=0.0, hi=300.0),
        )
