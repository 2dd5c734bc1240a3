"""`vigil up --free-ports` when another program takes a chosen port before its service
binds it (CI saw it: the other test worker's sockets are handed the same ephemeral
ports): the stack starts again on other free ports instead of failing."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from services.cli import local_secrets, stack
from services.cli.stack import DEFAULT_PORTS, Stack, default_ports
from services.common import embedded_redis


@pytest.mark.parametrize("victim", ["notifier metrics", "Redis"])
async def test_a_port_taken_meanwhile_is_replaced_by_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], victim: str
) -> None:
    thief = socket.socket()
    thief.bind(("127.0.0.1", 0))
    thief.listen()
    taken = thief.getsockname()[1]
    calls: list[list[int]] = []

    def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
        ports = embedded_redis.free_ports(count, host)
        if not calls:  # the first choice: free then, taken before the service binds it
            ports[list(default_ports()).index(victim)] = taken
        calls.append(ports)
        return ports

    monkeypatch.setattr(stack, "free_ports", free_ports)
    up = Stack(tmp_path, devices=0, rate=1.0, free_ports=True)
    try:
        secrets = local_secrets.load_or_create(tmp_path)
        ports, dashboard, _ = await up._start_on_ports(secrets)
        assert len(calls) == 2
        assert {port for pair in ports.values() for port in pair} | {dashboard} == set(
            calls[1][:-1]
        )
        assert up.redis is not None and up.redis.port == calls[1][-1]
        assert {p.name for p in up.procs} == set(DEFAULT_PORTS)
        assert all(p.process.returncode is None for p in up.procs)
    finally:
        await up._stop_all()
        thief.close()
    said = capsys.readouterr().out
    assert f"port 127.0.0.1:{taken}" in said and "starting again on other free ports" in said


async def test_without_free_ports_a_taken_port_is_not_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default ports are checked before anything starts; a race there is reported."""
    monkeypatch.setattr(stack, "START_ATTEMPTS", 3)
    up = Stack(tmp_path, devices=0, rate=1.0, free_ports=False)
    with socket.socket() as thief:
        thief.bind(("127.0.0.1", 0))
        thief.listen()
        taken = thief.getsockname()[1]
        ports = dict(default_ports())
        free = embedded_redis.free_ports(len(ports))
        ports = dict(zip(ports, free, strict=True))
        ports["notifier metrics"] = taken
        monkeypatch.setattr(Stack, "_ports", lambda self, wanted: ports)
        try:
            with pytest.raises(stack.ConfigError, match=f"port 127.0.0.1:{taken} of the notifier"):
                await up._start_on_ports(local_secrets.load_or_create(tmp_path))
        finally:
            await up._stop_all()
