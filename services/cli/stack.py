"""`vigil up`: the whole suite as local processes.

Starts a private Redis (AOF on, data under the state folder), the four services as
`vigil serve NAME` processes, waits until each reports healthy, writes `stack.json`,
prints the dashboard URL, starts the simulated devices, and on Ctrl-C or SIGTERM stops
everything in reverse order. If any process dies, the whole stack stops and says which.

With `--free-ports`, a port is free when chosen but nothing holds it until its service
binds it: another program can take it in between. A service that exits at start-up
while one of its ports is in use by someone else is that race; the stack is then
stopped and started again on other free ports (at most START_ATTEMPTS times).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from services.cli import local_secrets
from services.common import auth
from services.common.bootstrap import health_check
from services.common.embedded_redis import EmbeddedRedis, free_ports, port_in_use
from services.common.errors import ConfigError

log = logging.getLogger("vigil.up")
HOST = "127.0.0.1"
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
STOP_ORDER = (("simulator",), ("ingest",), ("notifier", "analyzer", "detector"))
START_ATTEMPTS = 3

# service: (gRPC port, metrics port); the notifier also serves HTTP on DASHBOARD_PORT.
DEFAULT_PORTS = {
    "detector": (50052, 9102),
    "analyzer": (50053, 9103),
    "notifier": (50054, 9104),
    "ingest": (50051, 9101),
}
DASHBOARD_PORT = 8080
REDIS_PORT = 6390


def default_ports() -> dict[str, int]:
    """Every port the stack uses, by what uses it ("ingest gRPC", "Redis", ...)."""
    wanted = {
        f"{name} {kind}": port
        for name, (g, m) in DEFAULT_PORTS.items()
        for kind, port in (("gRPC", g), ("metrics", m))
    }
    return wanted | {"dashboard HTTP": DASHBOARD_PORT, "Redis": REDIS_PORT}


@dataclass
class Proc:
    name: str
    process: asyncio.subprocess.Process
    ports: tuple[int, ...] = ()


class PortTaken(Exception):
    """A port chosen free was taken by another program before its service bound it."""


class Stack:
    def __init__(self, state_dir: Path, devices: int, rate: float, free_ports: bool) -> None:
        self.state_dir = state_dir.resolve()
        self.devices = devices
        self.rate = rate
        self.free_ports = free_ports
        self.procs: list[Proc] = []
        self.redis: EmbeddedRedis | None = None

    def _ports(self, wanted: dict[str, int]) -> dict[str, int]:
        """The port for each use: the defaults, all checked before any is refused, so one
        message names every busy port at once; or free ones with `--free-ports`."""
        if self.free_ports:
            return dict(zip(wanted, free_ports(len(wanted), HOST), strict=True))
        busy = [
            f"{HOST}:{port} ({what})" for what, port in wanted.items() if port_in_use(HOST, port)
        ]
        if len(busy) == 1:
            raise ConfigError(
                f"port {busy[0]} is already in use; "
                "stop what uses it or run `vigil up --free-ports`"
            )
        if busy:
            raise ConfigError(
                f"ports {', '.join(busy)} are already in use; "
                "stop what uses them or run `vigil up --free-ports`"
            )
        return dict(wanted)

    async def run(self) -> int:
        secrets = local_secrets.load_or_create(self.state_dir)

        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)

        started = time.monotonic()
        try:
            ports, dashboard_port, base_env = await self._start_on_ports(secrets)
            token = auth.dashboard_token(secrets["dashboard"], "local")
            url = f"http://{HOST}:{dashboard_port}/?token={token}"
            self._write_state(ports, dashboard_port, url)
            print(f"\nVigil is up in {time.monotonic() - started:.1f}s.", flush=True)
            print(f"Dashboard: {url}", flush=True)
            print(
                f"Stack description: {self.state_dir / 'stack.json'}; Ctrl-C stops.\n", flush=True
            )
            if self.devices:
                await self._spawn(
                    "simulator",
                    [
                        sys.executable,
                        "-m",
                        "services.cli",
                        "simulate",
                        "--target",
                        f"{HOST}:{ports['ingest'][0]}",
                        "--devices",
                        str(self.devices),
                        "--rate",
                        str(self.rate),
                    ],
                    base_env,
                )
            died = await self._supervise(stopping)
        finally:
            await self._stop_all()
        if died:
            print(f"vigil: {died} exited unexpectedly; the stack was stopped", file=sys.stderr)
            return 1
        return 0

    async def _start_on_ports(
        self, secrets: dict[str, str]
    ) -> tuple[dict[str, tuple[int, int]], int, dict[str, str]]:
        """Choose the ports and start on them: each service's (gRPC, metrics) ports, the
        dashboard's and the services' env. With `--free-ports`, starts again on other
        ports when one was taken meanwhile (at most START_ATTEMPTS tries)."""
        attempt = 0
        while True:
            attempt += 1
            chosen = self._ports(default_ports())
            ports = {
                name: (chosen[f"{name} gRPC"], chosen[f"{name} metrics"]) for name in DEFAULT_PORTS
            }
            dashboard_port = chosen["dashboard HTTP"]
            try:
                base_env = await self._start(secrets, ports, dashboard_port, chosen["Redis"])
                return ports, dashboard_port, base_env
            except PortTaken as exc:
                await self._stop_all()
                if not self.free_ports or attempt >= START_ATTEMPTS:
                    raise ConfigError(str(exc)) from None
                print(f"vigil: {exc}; starting again on other free ports", flush=True)

    async def _start(
        self,
        secrets: dict[str, str],
        ports: dict[str, tuple[int, int]],
        dashboard_port: int,
        redis_port: int,
    ) -> dict[str, str]:
        """Redis, then the four services, until all are healthy; the services' env.
        PortTaken when another program took one of the chosen ports first."""
        # fsync before every reply: an ack to a device means its batch is on disk, even
        # if the machine dies (README, Reliability).
        self.redis = EmbeddedRedis(self.state_dir / "redis", redis_port, appendfsync="always")
        try:
            await asyncio.to_thread(self.redis.start)
        except ConfigError as exc:
            if port_in_use(HOST, redis_port):
                raise PortTaken(f"port {HOST}:{redis_port} (Redis) was taken meanwhile") from exc
            raise
        base_env = {
            **os.environ,
            "REDIS_URL": self.redis.url,
            "VIGIL_HOST": HOST,
            "VIGIL_DEVICE_SECRET": secrets["device"],
            "VIGIL_DASHBOARD_SECRET": secrets["dashboard"],
            "VIGIL_DETECTOR_ADDRS": f"{HOST}:{ports['detector'][0]}",
            "VIGIL_ANALYZER_ADDR": f"{HOST}:{ports['analyzer'][0]}",
            "PYTHONUNBUFFERED": "1",
        }
        for name, (grpc_port, metrics_port) in ports.items():
            env = {
                **base_env,
                "VIGIL_GRPC_PORT": str(grpc_port),
                "VIGIL_METRICS_PORT": str(metrics_port),
            }
            owned: tuple[int, ...] = (grpc_port, metrics_port)
            if name == "notifier":
                env["VIGIL_HTTP_PORT"] = str(dashboard_port)
                owned += (dashboard_port,)
            argv = [sys.executable, "-m", "services.cli", "serve", name]
            await self._spawn(name, argv, env, owned)
        await self._wait_ready(ports, dashboard_port)
        return base_env

    async def _spawn(
        self, name: str, argv: list[str], env: dict[str, str], ports: tuple[int, ...] = ()
    ) -> None:
        # A session of its own: Ctrl-C in the terminal signals only `vigil up`, which
        # then stops the stack in order (`_stop_all`), not everything at once.
        process = await asyncio.create_subprocess_exec(*argv, env=env, start_new_session=True)
        self.procs.append(Proc(name, process, ports))

    async def _wait_ready(self, ports: dict[str, tuple[int, int]], dashboard_port: int) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        pending = dict(ports)
        async with aiohttp.ClientSession() as http:
            while pending or dashboard_port:
                for proc in self.procs:
                    if proc.process.returncode is not None:
                        taken = [p for p in proc.ports if port_in_use(HOST, p)]
                        if taken:  # it has exited: whoever holds its port is not the stack
                            raise PortTaken(
                                f"port {HOST}:{taken[0]} of the {proc.name} was taken meanwhile"
                            )
                        raise ConfigError(f"{proc.name} exited with code {proc.process.returncode}")
                for name, (grpc_port, _) in list(pending.items()):
                    if await health_check(f"{HOST}:{grpc_port}", timeout_s=1.0):
                        pending.pop(name)
                if not pending and dashboard_port:
                    with contextlib.suppress(aiohttp.ClientError):
                        url = f"http://{HOST}:{dashboard_port}/readyz"
                        async with http.get(url) as response:
                            if response.status == 200:
                                dashboard_port = 0
                if time.monotonic() > deadline:
                    raise ConfigError(
                        f"not healthy after {READY_TIMEOUT_S:.0f}s: {sorted(pending)}"
                    )
                if pending or dashboard_port:
                    await asyncio.sleep(0.1)  # readiness poll: health has no push API

    async def _stop(self, proc: Proc) -> None:
        if proc.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.process.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            log.warning("killing %s after %.0fs", proc.name, STOP_TIMEOUT_S)
            with contextlib.suppress(ProcessLookupError):
                proc.process.kill()
            await proc.process.wait()

    def _write_state(
        self, ports: dict[str, tuple[int, int]], dashboard_port: int, url: str
    ) -> None:
        assert self.redis is not None
        state = {
            "redis_url": self.redis.url,
            "ingest": f"{HOST}:{ports['ingest'][0]}",
            "detector": f"{HOST}:{ports['detector'][0]}",
            "analyzer": f"{HOST}:{ports['analyzer'][0]}",
            "notifier_grpc": f"{HOST}:{ports['notifier'][0]}",
            "dashboard": url,
            "metrics": {n: f"http://{HOST}:{m}/metrics" for n, (_, m) in ports.items()},
        }
        path = self.state_dir / "stack.json"
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(state, out, indent=2)
        tmp.replace(path)

    async def _supervise(self, stopping: asyncio.Event) -> str | None:
        waits = {asyncio.ensure_future(p.process.wait()): p.name for p in self.procs}
        stop = asyncio.ensure_future(stopping.wait())
        done, _ = await asyncio.wait([stop, *waits], return_when=asyncio.FIRST_COMPLETED)
        for future in [stop, *waits]:
            future.cancel()
        if stop in done:
            return None
        return next(waits[f] for f in done if f in waits)

    async def _stop_all(self) -> None:
        """Stop from the way in: the devices, then ingest (it acks what it has read while
        the detector and Redis are still up, and writes the devices' goodbyes), then
        the other services, Redis last (its final snapshots need it)."""
        for stage in STOP_ORDER:
            await asyncio.gather(*(self._stop(p) for p in self.procs if p.name in stage))
        await asyncio.gather(
            *(self._stop(p) for p in self.procs if not any(p.name in s for s in STOP_ORDER))
        )
        (self.state_dir / "stack.json").unlink(missing_ok=True)
        self.procs = []
        if self.redis is not None:
            await asyncio.to_thread(self.redis.stop)
            self.redis = None
