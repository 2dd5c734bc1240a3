"""What the figures were measured on: CPUs, memory, OS, Python, package versions, the
redis-server binary, and how busy the machine was (load average) when the run started
and ended. Linux /proc is read where it exists; nothing is changed."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from services.common.embedded_redis import find_redis_server

PACKAGES = ("vigil", "grpcio", "protobuf", "redis", "aiohttp", "uvloop", "prometheus-client")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_bytes() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _redis_server() -> str:
    try:
        binary = find_redis_server()
        out = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except Exception as exc:  # the figures still stand; say what is unknown
        return f"unknown ({type(exc).__name__})"
    return out.strip() or "unknown"


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def describe() -> dict[str, Any]:
    return {
        "cpus": cpus(),
        "cpu_model": _cpu_model(),
        "memory_bytes": _memory_bytes(),
        "os": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "packages": {name: _version(name) for name in PACKAGES},
        "redis_server": _redis_server(),
        "load_average": {"start": load_average(), "end": None},
    }
