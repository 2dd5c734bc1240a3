"""Simulated devices that keep a ledger of everything they sent and got acknowledged.

Each device is the reference client (`services.simulator.device.Device`: resend on
reconnect, Flow obeyed) fed by a simulated machine (`services.simulator.fleet.Machine`,
incidents at `incident_rate` per tick). The ledger is what the checker holds Redis and
the dashboards to: per device, every batch by seq with its readings, and the acked seqs.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from grpc import aio
from vigil.v1 import common_pb2, ingest_pb2

from services.simulator.device import Device, DeviceRefused
from services.simulator.fleet import SITES, Machine

Row = tuple[str, float]  # (sensor, unix seconds rounded to ms, as history keeps it)


def row_key(reading: common_pb2.Reading) -> Row:
    return reading.sensor, round(reading.time.seconds + reading.time.nanos / 1e9, 3)


@dataclass
class DeviceLedger:
    sent: dict[int, list[Row]] = field(default_factory=dict)
    acked: set[int] = field(default_factory=set)
    refused: str | None = None

    @property
    def acked_readings(self) -> int:
        return sum(len(self.sent[seq]) for seq in self.acked)


class Fleet:
    """`devices` devices sending `rate` batches a second each until stopped."""

    def __init__(
        self,
        target: str,
        token_of: Callable[[str], str],
        devices: int,
        rate: float,
        *,
        prefix: str = "chaos",
        incident_rate: float = 0.01,
        seed: int = 7,
    ) -> None:
        self.target = target
        self.token_of = token_of
        self.rate = rate
        self.prefix = prefix
        rng = random.Random(seed)
        self.ids = [f"{prefix}-{i:04d}" for i in range(devices)]
        self.machines = {d: Machine(i, random.Random(rng.random()), incident_rate)
                         for i, d in enumerate(self.ids)}  # fmt: skip
        self.ledger = {d: DeviceLedger() for d in self.ids}
        self.devices: dict[str, Device] = {}
        self.channels: list[aio.Channel] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._sending = True
        self._acks = 0
        self._acked = asyncio.Event()

    async def start(self, channels: int = 4) -> None:
        """Connect every device (over a few shared channels) and start sending."""
        self.channels = [aio.insecure_channel(self.target) for _ in range(channels)]
        for i, device_id in enumerate(self.ids):
            ledger = self.ledger[device_id]

            def on_ack(ack: ingest_pb2.Ack, ledger: DeviceLedger = ledger) -> None:
                ledger.acked.add(ack.seq)
                self._acks += 1
                self._acked.set()

            labels = {"site": SITES[i % len(SITES)], "model": f"m{i % 4 + 1}"}
            self.devices[device_id] = Device(
                self.channels[i % channels], device_id, self.token_of(device_id), labels, on_ack
            )
        await asyncio.gather(*(device.start() for device in self.devices.values()))
        self._tasks = [asyncio.create_task(self._send(d)) for d in self.ids]

    async def _send(self, device_id: str) -> None:
        device, machine, ledger = self.devices[device_id], self.machines[device_id], \
            self.ledger[device_id]  # fmt: skip
        period = 1.0 / self.rate
        await asyncio.sleep(machine.rng.random() * period)  # spread the fleet over a period
        next_at = time.monotonic()
        last = 0.0
        while self._sending:
            # History keeps reading times to the millisecond, and the checker tells
            # readings apart by them: two ticks in one millisecond (catching up after a
            # stall) would look like one reading stored twice.
            last = max(time.time(), last + 0.001)
            readings = machine.tick(last)
            seq = device.next_seq  # the seq `send` will give this batch
            ledger.sent[seq] = [row_key(r) for r in readings]
            try:
                given = await device.send(readings)
            except DeviceRefused as exc:
                ledger.refused = str(exc)
                del ledger.sent[seq]
                return
            assert given == seq
            next_at += period
            # Behind schedule (a window full while ingest was away): carry on at once,
            # without trying to catch up on the missed ticks.
            next_at = max(next_at, time.monotonic() - period)
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    async def progress(self, batches: int, timeout_s: float = 60.0) -> None:
        """Wait until `batches` more batches have been acknowledged (the system works)."""
        target = self._acks + batches

        async def reached() -> None:
            while self._acks < target:
                self._acked.clear()
                await self._acked.wait()

        await asyncio.wait_for(reached(), timeout_s)

    def set_rate(self, rate: float) -> None:
        self.rate = rate

    async def drain(self, timeout_s: float = 120.0) -> None:
        """Stop sending, then wait until every batch sent is acknowledged."""
        self._sending = False
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await asyncio.wait_for(
            asyncio.gather(*(d.drain() for d in self.devices.values()), return_exceptions=True),
            timeout_s,
        )

    async def close(self) -> None:
        self._sending = False
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, DeviceRefused):
                await task
        for device in self.devices.values():
            await device.close()
        for channel in self.channels:
            await channel.close()

    def sent_batches(self) -> int:
        return sum(len(led.sent) for led in self.ledger.values())

    def acked_batches(self) -> int:
        return sum(len(led.acked) for led in self.ledger.values())

    def reconnects(self) -> int:
        return sum(d.stats.reconnects for d in self.devices.values())

    def said(self) -> dict[str, set[str]]:
        """What streams ended with, by status: every different details devices kept."""
        total: dict[str, set[str]] = {}
        for device in self.devices.values():
            for code, texts in device.stats.said.items():
                total.setdefault(code, set()).update(texts)
        return total

    def ended(self) -> dict[str, int]:
        """How often device streams ended, by status."""
        total: dict[str, int] = {}
        for device in self.devices.values():
            for code, count in device.stats.ended.items():
                total[code] = total.get(code, 0) + count
        return total
