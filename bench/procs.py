"""Real service processes for the benchmarks: a private redis-server (AOF on, as in
production) and `vigil serve NAME` processes on free loopback ports, each ready when
its JSON log says so, with their resident memory and CPU time read from /proc.

Every process started here is stopped by the context that started it (SIGTERM, then
SIGKILL after a bound); nothing outlives a stage. Never binds anything but 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.common.embedded_redis import EmbeddedRedis

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0


def rss_bytes(pid: int) -> int:
    """Resident set size of a process now (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Service:
    """One `vigil serve NAME` process and what its log said."""

    name: str
    process: asyncio.subprocess.Process
    lines: list[dict[str, Any]] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def grpc_addr(self) -> str:
        return f"127.0.0.1:{self.ports['grpc_port']}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['http_port']}"

    def rss(self) -> int:
        return rss_bytes(self.pid)

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    async def pump(self, ready: asyncio.Future[None], needs: set[str]) -> None:
        """Read its JSON log: note the ports it names, resolve `ready` at "ready"."""
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            try:
                line = json.loads(raw)
            except ValueError:
                line = {"msg": raw.decode(errors="replace").rstrip()}
            if len(self.lines) < 200 or line.get("level") in ("error", "critical"):
                self.lines.append(line)
            for key in ("grpc_port", "http_port", "metrics_port"):
                if isinstance(line.get(key), int):
                    self.ports[key] = line[key]
            if line.get("msg") == "ready" and not ready.done() and needs <= self.ports.keys():
                ready.set_result(None)
        if not ready.done():
            tail = "\n".join(str(line) for line in self.lines[-15:])
            ready.set_exception(RuntimeError(f"{self.name} exited before ready:\n{tail}"))

    async def stop(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                await self.process.wait()


@dataclass
class Cluster:
    """A private Redis and the services started against it."""

    redis: EmbeddedRedis
    device_secret: str
    dashboard_secret: str
    services: dict[str, Service] = field(default_factory=dict)
    _pumps: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def redis_pid(self) -> int:
        assert self.redis.process is not None
        return self.redis.process.pid

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "REDIS_URL": self.redis.url,
            "VIGIL_HOST": "127.0.0.1",
            "VIGIL_GRPC_PORT": "0",
            "VIGIL_METRICS_PORT": "0",
            "VIGIL_HTTP_PORT": "0",
            "VIGIL_LOG_FORMAT": "json",
            "VIGIL_LOG_LEVEL": "info",
            "VIGIL_SHUTDOWN_GRACE_SECONDS": "2",
            "VIGIL_DEVICE_SECRET": self.device_secret,
            "VIGIL_DASHBOARD_SECRET": self.dashboard_secret,
            "PYTHONUNBUFFERED": "1",
        }

    async def start(self, name: str, env: Mapping[str, str] | None = None) -> Service:
        """Start `vigil serve NAME` and wait until it is ready; returns it."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.cli",
            "serve",
            name,
            env={**self.env(), **(env or {})},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        service = Service(name, process)
        self.services[name] = service
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        needs = {"grpc_port", "http_port"} if name == "notifier" else {"grpc_port"}
        self._pumps.append(asyncio.create_task(service.pump(ready, needs)))
        await asyncio.wait_for(ready, READY_TIMEOUT_S)
        return service

    async def stop_all(self) -> None:
        for service in reversed(list(self.services.values())):
            await service.stop()
        self.services.clear()
        for pump in self._pumps:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(pump, 5)
        self._pumps.clear()


@asynccontextmanager
async def cluster(*, appendonly: bool = True) -> AsyncIterator[Cluster]:
    """A private redis-server in a temporary folder; every service started on it is
    stopped on exit, then Redis."""
    with tempfile.TemporaryDirectory(prefix="vigil-bench-") as tmp:
        redis = EmbeddedRedis(Path(tmp) / "redis", appendonly=appendonly)
        await asyncio.to_thread(redis.start)
        running = Cluster(redis, secrets.token_hex(32), secrets.token_hex(32))
        try:
            yield running
        finally:
            await running.stop_all()
            await asyncio.to_thread(redis.stop)
