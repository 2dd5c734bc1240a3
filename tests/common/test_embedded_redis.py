from __future__ import annotations

import socket
from pathlib import Path

import pytest

from services.common.embedded_redis import EmbeddedRedis, find_redis_server, free_ports, port_in_use
from services.common.errors import ConfigError


def test_binary_is_found() -> None:
    assert Path(find_redis_server()).exists()


def test_busy_port_is_one_clear_error(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(
            ConfigError, match=f"port 127.0.0.1:{port} \\(Redis\\) is already in use"
        ):
            EmbeddedRedis(tmp_path, port).start()


def test_runs_with_aof_in_its_folder(tmp_path: Path) -> None:
    import redis

    with EmbeddedRedis(tmp_path) as server:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("dir")["dir"] == str(tmp_path)
        client.close()


def test_free_ports_are_all_different_and_free() -> None:
    ports = free_ports(200)
    assert len(set(ports)) == 200
    assert not any(port_in_use("127.0.0.1", port) for port in ports)


def test_stopping_never_fails_the_log_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The log reader owns Redis's output pipe: stopping waits for it to read to the end
    instead of closing the pipe under it (which failed it mid-read now and then)."""
    import threading

    failures: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: failures.append(args.exc_value))
    for trial in range(40):
        server = EmbeddedRedis(tmp_path / str(trial))
        server.start()
        server.stop()  # SIGTERM: Redis logs its goodbye as it exits
        assert server.process is not None and server.process.stdout is not None
        assert server.process.stdout.closed
    assert failures == []
