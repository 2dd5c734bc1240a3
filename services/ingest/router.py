"""Which detector shard owns a device, and calling it with coalesced batches.

Rendezvous (highest-random-weight) hashing over the configured detector addresses: each
device goes to the address with the highest hash of (address, device), so adding or
removing a shard moves only the devices of that shard, and every ingest replica agrees
without talking to the others. Concurrent batches of many devices bound for one shard
travel in one Detect call (see `coalesce`), with few calls in flight per shard. A call
never goes without a deadline; a failed one is UNAVAILABLE for every batch in it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable

import grpc
from grpc import aio
from vigil.v1 import detector_pb2, detector_pb2_grpc

from services.common.errors import Unavailable
from services.ingest.coalesce import Coalescer

# A Detect call carries at most this many device batches (and so at most this many
# times the largest batch in readings, well under the detector's message limit).
MAX_BATCHES_PER_CALL = 256


def _weight(address: str, device_id: str) -> int:
    digest = hashlib.blake2b(f"{address}|{device_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner(addresses: tuple[str, ...], device_id: str) -> str:
    """The address of the shard that owns `device_id`."""
    return max(addresses, key=lambda address: _weight(address, device_id))


class DetectorRouter:
    """One channel and one coalescer per detector shard; every call has a deadline."""

    def __init__(
        self,
        addresses: tuple[str, ...],
        timeout_s: float,
        *,
        calls_in_flight: int = 2,
        on_call: Callable[[int, float], None] | None = None,
    ) -> None:
        if not addresses:
            raise ValueError("at least one detector address is needed")
        self.addresses = addresses
        self.timeout_s = timeout_s
        self._channels = {a: aio.insecure_channel(a) for a in addresses}
        self._shards = {
            a: Coalescer(
                self._caller(a),
                max_items=MAX_BATCHES_PER_CALL,
                max_in_flight=calls_in_flight,
                on_call=on_call,
            )
            for a in addresses
        }
        self._owners: dict[str, str] = {}

    def _caller(
        self, address: str
    ) -> Callable[[list[detector_pb2.DeviceBatch]], Awaitable[list[detector_pb2.BatchResult]]]:
        stub = detector_pb2_grpc.DetectorStub(self._channels[address])

        async def call(
            batches: list[detector_pb2.DeviceBatch],
        ) -> list[detector_pb2.BatchResult]:
            request = detector_pb2.DetectRequest(batches=batches)
            try:
                response = await stub.Detect(request, timeout=self.timeout_s)
            except grpc.RpcError as exc:
                raise Unavailable(f"detector {address} unavailable ({exc.code().name})") from None
            if len(response.results) != len(batches):
                raise Unavailable(f"detector {address} answered {len(response.results)} results")
            return list(response.results)

        return call

    @property
    def backlog(self) -> int:
        return sum(shard.backlog for shard in self._shards.values())

    def shard_of(self, device_id: str) -> str:
        address = self._owners.get(device_id)
        if address is None:
            address = self._owners[device_id] = owner(self.addresses, device_id)
            if len(self._owners) > 100_000:  # a cache, not a registry
                self._owners.clear()
        return address

    async def detect(self, batch: detector_pb2.DeviceBatch) -> detector_pb2.BatchResult:
        return await self._shards[self.shard_of(batch.device_id)].submit(batch)

    def start(self) -> None:
        for shard in self._shards.values():
            shard.start()

    async def close(self) -> None:
        for shard in self._shards.values():
            await shard.stop()
        for channel in self._channels.values():
            await channel.close()
