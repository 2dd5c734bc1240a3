"""The whole suite as real processes on fixed loopback ports, for fault tests.

A private Redis (AOF on, fsync `always` as `vigil up` runs it, its own folder) and the
four services, each `python -m services.cli serve NAME` with JSON logs, ready when its
log says "ready". A service can be killed (SIGKILL: no drain, no goodbye), stopped
(SIGTERM) and started again on the same ports, so clients reconnect to the address they
know. Every service's log lines are kept per incarnation, and its peak resident memory
(the kernel's VmHWM, read while it runs and just before it is killed) per name across
incarnations.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.common import auth
from services.common.embedded_redis import EmbeddedRedis, free_ports

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("detector", "analyzer", "notifier", "ingest")
READY_TIMEOUT_S = 60.0
#: Settings fault tests run with: history keeps every reading (the checker counts them),
#: a killed analyzer's jobs come back within seconds instead of a minute.
FAULT_ENV = {
    "VIGIL_HISTORY_RESOLUTION_SECONDS": "0",
    "VIGIL_HISTORY_MAXLEN": "100000",
    "VIGIL_QUEUE_LEASE_SECONDS": "2",
    "VIGIL_QUEUE_REAP_SECONDS": "0.5",
}
STOP_TIMEOUT_S = 20.0


def peak_rss_bytes(pid: int) -> int:
    """The process's peak resident set size so far (0 once it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


@dataclass
class Incarnation:
    """One run of a service process."""

    process: asyncio.subprocess.Process
    lines: list[dict[str, Any]] = field(default_factory=list)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    pump: asyncio.Task[None] | None = None

    def errors(self) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("level") in ("error", "critical")]


@dataclass
class Service:
    name: str
    grpc_port: int
    metrics_port: int
    http_port: int = 0
    runs: list[Incarnation] = field(default_factory=list)
    peak_rss: int = 0

    @property
    def current(self) -> Incarnation:
        return self.runs[-1]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def sample_rss(self) -> None:
        if self.runs and self.current.process.returncode is None:
            self.peak_rss = max(self.peak_rss, peak_rss_bytes(self.current.process.pid))

    def lines(self) -> list[dict[str, Any]]:
        return [line for run in self.runs for line in run.lines]


class Cluster:
    """Redis and the four services; `env` adds to every service, `per_service` to one."""

    def __init__(
        self,
        workdir: Path,
        env: Mapping[str, str] | None = None,
        per_service: Mapping[str, Mapping[str, str]] | None = None,
        *,
        appendfsync: str = "always",
    ) -> None:
        self.workdir = workdir
        self.redis = EmbeddedRedis(workdir / "redis", appendfsync=appendfsync)
        self.device_secret = os.urandom(32).hex()
        self.dashboard_secret = os.urandom(32).hex()
        ports = iter(free_ports(3 * len(SERVICES)))  # all different
        self.services = {
            name: Service(name, next(ports), next(ports), next(ports) if name == "notifier" else 0)
            for name in SERVICES
        }
        self.extra_env = dict(env or {})
        self.per_service = {k: dict(v) for k, v in (per_service or {}).items()}
        self.kills: dict[str, int] = dict.fromkeys([*SERVICES, "redis"], 0)
        self._sampler: asyncio.Task[None] | None = None

    @property
    def redis_url(self) -> str:
        return self.redis.url

    @property
    def ingest(self) -> str:
        return self.services["ingest"].address

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.services['notifier'].http_port}"

    def dashboard_token(self, name: str = "chaos") -> str:
        return auth.dashboard_token(self.dashboard_secret, name)

    def device_token(self, device_id: str) -> str:
        return auth.device_token(self.device_secret, device_id)

    def env_of(self, name: str) -> dict[str, str]:
        service = self.services[name]
        env = {
            **os.environ,
            "REDIS_URL": self.redis.url,
            "VIGIL_HOST": "127.0.0.1",
            "VIGIL_GRPC_PORT": str(service.grpc_port),
            "VIGIL_METRICS_PORT": str(service.metrics_port),
            "VIGIL_LOG_FORMAT": "json",
            "VIGIL_DEVICE_SECRET": self.device_secret,
            "VIGIL_DASHBOARD_SECRET": self.dashboard_secret,
            "VIGIL_DETECTOR_ADDRS": self.services["detector"].address,
            "VIGIL_ANALYZER_ADDR": self.services["analyzer"].address,
            "VIGIL_SHUTDOWN_GRACE_SECONDS": "5",
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
            **self.per_service.get(name, {}),
        }
        if name == "notifier":
            env["VIGIL_HTTP_PORT"] = str(service.http_port)
        return env

    async def start(self) -> None:
        await asyncio.to_thread(self.redis.start)
        await asyncio.gather(*(self.spawn(name) for name in SERVICES))
        self._sampler = asyncio.create_task(self._sample())

    async def spawn(self, name: str) -> Incarnation:
        """Start `name` (again) on its ports and wait until it is ready."""
        service = self.services[name]
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.cli",
            "serve",
            name,
            cwd=ROOT,
            env=self.env_of(name),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        run = Incarnation(process)
        service.runs.append(run)
        run.pump = asyncio.create_task(self._pump(name, run))
        ready = asyncio.create_task(run.ready.wait())
        ended = asyncio.create_task(process.wait())
        await asyncio.wait({ready, ended}, timeout=READY_TIMEOUT_S, return_when="FIRST_COMPLETED")
        ready.cancel()
        ended.cancel()
        if not run.ready.is_set():
            tail = "\n".join(json.dumps(line) for line in run.lines[-20:])
            raise RuntimeError(f"{name} did not become ready:\n{tail}")
        return run

    async def _pump(self, name: str, run: Incarnation) -> None:
        assert run.process.stderr is not None
        log = (self.workdir / f"{name}.log").open("a", buffering=1)
        try:
            async for raw in run.process.stderr:
                log.write(raw.decode(errors="replace"))
                try:
                    line = json.loads(raw)
                except ValueError:
                    line = {"level": "raw", "msg": raw.decode(errors="replace").rstrip()}
                if not isinstance(line, dict):
                    line = {"level": "raw", "msg": str(line)}
                run.lines.append(line)
                if line.get("msg") == "ready":
                    run.ready.set()
        finally:
            log.close()

    async def _sample(self) -> None:
        while True:
            for service in self.services.values():
                service.sample_rss()
            await asyncio.sleep(0.5)  # memory is sampled, it has no events

    async def kill(self, name: str) -> None:
        """kill -9 `name`: no drain, no goodbye, no final snapshot."""
        if name == "redis":
            await asyncio.to_thread(self.redis.kill)
            self.kills["redis"] += 1
            return
        service = self.services[name]
        service.sample_rss()
        run = service.current
        run.process.send_signal(signal.SIGKILL)
        await run.process.wait()
        if run.pump is not None:
            await run.pump
        self.kills[name] += 1

    async def restart(self, name: str) -> None:
        if name == "redis":
            await asyncio.to_thread(self.redis.start)
            return
        await self.spawn(name)

    async def terminate(self, name: str) -> int:
        """SIGTERM `name` and wait for its graceful exit; returns its exit code."""
        service = self.services[name]
        service.sample_rss()
        run = service.current
        run.process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(run.process.wait(), STOP_TIMEOUT_S)
        if run.pump is not None:
            await run.pump
        return code

    def errors(self, name: str) -> list[dict[str, Any]]:
        return [line for run in self.services[name].runs for line in run.errors()]

    def unexpected_errors(self, name: str) -> list[dict[str, Any]]:
        """Errors a boundary (gRPC interceptor, HTTP middleware) turned into INTERNAL /
        500: a bug, where a fault should have been a clear status."""
        return [line for line in self.errors(name) if str(line.get("msg", "")).startswith(
            "unexpected error")]  # fmt: skip

    async def stop(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
        for name in reversed(SERVICES):
            service = self.services[name]
            if not service.runs or service.current.process.returncode is not None:
                continue
            service.sample_rss()
            with contextlib.suppress(ProcessLookupError):
                service.current.process.send_signal(signal.SIGTERM)
        for service in self.services.values():
            for run in service.runs:
                try:
                    await asyncio.wait_for(run.process.wait(), STOP_TIMEOUT_S)
                except TimeoutError:
                    run.process.kill()
                    await run.process.wait()
                if run.pump is not None:
                    with contextlib.suppress(asyncio.CancelledError):
                        await run.pump
        await asyncio.to_thread(self.redis.stop)


@asynccontextmanager
async def cluster(
    workdir: Path,
    env: Mapping[str, str] | None = None,
    per_service: Mapping[str, Mapping[str, str]] | None = None,
    *,
    appendfsync: str = "always",
) -> AsyncIterator[Cluster]:
    running = Cluster(workdir, env, per_service, appendfsync=appendfsync)
    try:
        await running.start()
        yield running
    finally:
        await running.stop()
