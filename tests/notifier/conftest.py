"""A real notifier (in-process, real bootstrap) on a real Redis, and event builders
in the shared contract's format."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from redis.asyncio import Redis

from services.common.auth import dashboard_token
from services.common.bootstrap import Running
from tests.support.services import running


@dataclass
class Notifier:
    service: Running

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.service.app.http_port}"  # type: ignore[attr-defined]

    @property
    def ws(self) -> str:
        return self.http.replace("http://", "ws://") + "/ws"

    @property
    def grpc(self) -> str:
        return f"127.0.0.1:{self.service.grpc_port}"


@asynccontextmanager
async def notifier_at(env: Mapping[str, str]) -> AsyncIterator[Notifier]:
    async with running("notifier", env) as service:
        yield Notifier(service)


@pytest.fixture
async def notifier(base_env: dict[str, str], redis: Redis) -> AsyncIterator[Notifier]:
    async with notifier_at(base_env) as started:
        yield started


@pytest.fixture
def token(dashboard_secret: str) -> str:
    return dashboard_token(dashboard_secret, "tests")


def alert(
    device: str,
    severity: str = "warning",
    *,
    n: int = 0,
    alert_id: str | None = None,
    state: str = "opened",
    labels: dict[str, str] | None = None,
    sensor: str = "temperature",
    reasons: list[str] | None = None,
) -> dict[str, Any]:
    episode = alert_id or f"ep-{device}-{sensor}"
    return {
        "kind": "alert",
        "alert_id": episode,
        "episode_id": episode,
        "state": state,
        "device_id": device,
        "labels": labels or {},
        "sensor": sensor,
        "severity": severity,
        "value": 97.5,
        "score": 0.9,
        "reasons": ["value 97.5 above critical threshold 95"] if reasons is None else reasons,
        "time": "2026-11-25T12:00:00.000Z",
        "started": "2026-11-25T12:00:00.000Z",
        "n": n,
    }


def insight(device: str, alert_id: str, *, source: str = "builtin", n: int = 0) -> dict[str, Any]:
    return {
        "kind": "insight",
        "alert_id": alert_id,
        "episode_id": alert_id,
        "job_id": f"alert:{alert_id}:2",
        "device_id": device,
        "sensor": "temperature",
        "severity": "warning",
        "time": "2026-11-25T12:00:01.000Z",
        "diagnosis": f"diagnosis {n}",
        "likely_causes": ["cooling"],
        "actions": ["check the fan"],
        "urgency": "warning",
        "confidence": 0.7,
        "source": source,
        "cost": 0.0,
    }


class NeverReadingClient:
    """A WebSocket client that subscribes and then never reads a byte, with a small
    receive buffer: what a frozen phone on a bad link looks like to the server."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    @classmethod
    async def connect(cls, ws_url: str, subscribe: dict[str, Any]) -> NeverReadingClient:
        host, _, rest = ws_url.removeprefix("ws://").partition(":")
        port = int(rest.split("/", 1)[0])
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_connect(sock, (host, port))
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        await loop.sock_sendall(sock, request.encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += await loop.sock_recv(sock, 1)  # byte by byte: leave the rest unread
        assert answer.startswith(b"HTTP/1.1 101"), answer
        await loop.sock_sendall(sock, masked_text_frame(json.dumps(subscribe).encode()))
        return cls(sock)

    async def closed_by_server(self) -> bool:
        """Read everything that is left; True once the server has ended the connection."""
        loop = asyncio.get_running_loop()
        try:
            while await loop.sock_recv(self.sock, 1 << 16):
                pass
        except ConnectionResetError:
            return True
        return True

    def close(self) -> None:
        self.sock.close()


def masked_text_frame(payload: bytes) -> bytes:
    mask = os.urandom(4)
    header = bytes([0x81])
    if len(payload) < 126:
        header += bytes([0x80 | len(payload)])
    else:
        header += bytes([0x80 | 126]) + struct.pack("!H", len(payload))
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
