"""Which detector shard owns a device, and calling it.

Rendezvous (highest-random-weight) hashing over the configured detector addresses: each
device goes to the address with the highest hash of (address, device), so adding or
removing a shard moves only the devices of that shard, and every ingest replica agrees
without talking to the others.
"""

from __future__ import annotations

import hashlib

import grpc
from grpc import aio
from vigil.v1 import detector_pb2, detector_pb2_grpc

from services.common.errors import Unavailable


def _weight(address: str, device_id: str) -> int:
    digest = hashlib.blake2b(f"{address}|{device_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner(addresses: tuple[str, ...], device_id: str) -> str:
    """The address of the shard that owns `device_id`."""
    return max(addresses, key=lambda address: _weight(address, device_id))


class DetectorRouter:
    """One channel per detector shard; Detect calls with a deadline."""

    def __init__(self, addresses: tuple[str, ...], timeout_s: float) -> None:
        if not addresses:
            raise ValueError("at least one detector address is needed")
        self.addresses = addresses
        self.timeout_s = timeout_s
        self._channels = {a: aio.insecure_channel(a) for a in addresses}
        self._stubs = {a: detector_pb2_grpc.DetectorStub(c) for a, c in self._channels.items()}

    async def detect(self, batch: detector_pb2.DeviceBatch) -> detector_pb2.BatchResult:
        address = owner(self.addresses, batch.device_id)
        request = detector_pb2.DetectRequest(batches=[batch])
        try:
            response = await self._stubs[address].Detect(request, timeout=self.timeout_s)
        except grpc.RpcError as exc:
            raise Unavailable(f"detector {address} unavailable ({exc.code().name})") from None
        result: detector_pb2.BatchResult = response.results[0]
        return result

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
