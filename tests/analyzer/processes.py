"""Analyzer replicas as real processes (`python -m services.cli serve analyzer`), each
ready when its JSON log says so; stopped with SIGTERM (or killed) by the test."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any


class Replica:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[dict[str, Any]] = []
        self.ready: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pump = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            try:
                line = json.loads(raw)
            except ValueError:
                line = {"msg": raw.decode(errors="replace").rstrip()}
            self.lines.append(line)
            if line.get("msg") == "ready" and not self.ready.done():
                self.ready.set_result(line)
        if not self.ready.done():
            tail = "\n".join(str(line) for line in self.lines[-20:])
            self.ready.set_exception(RuntimeError(f"analyzer exited before ready:\n{tail}"))

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        """kill -9: no shutdown, no lease released."""
        self.process.send_signal(signal.SIGKILL)

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 15)
            except TimeoutError:
                self.process.send_signal(signal.SIGKILL)
                await self.process.wait()
        with contextlib.suppress(asyncio.CancelledError):
            await self._pump


async def start_replica(env: Mapping[str, str]) -> Replica:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.cli",
        "serve",
        "analyzer",
        env={
            **os.environ,
            "VIGIL_HOST": "127.0.0.1",
            "VIGIL_GRPC_PORT": "0",
            "VIGIL_METRICS_PORT": "0",
            "VIGIL_LOG_FORMAT": "json",
            "VIGIL_SHUTDOWN_GRACE_SECONDS": "1",
            **env,
        },
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    return Replica(process)


@asynccontextmanager
async def replicas(count: int, env: Mapping[str, str]) -> AsyncIterator[list[Replica]]:
    """`count` replicas started together, yielded once all are ready."""
    started = [await start_replica(env) for _ in range(count)]
    try:
        await asyncio.wait_for(asyncio.gather(*(r.ready for r in started)), 60)
        yield started
    finally:
        await asyncio.gather(*(r.stop() for r in started))
