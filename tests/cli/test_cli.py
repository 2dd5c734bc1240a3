"""The `vigil` command as a user runs it: real processes, real exit codes."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import socket
import subprocess
import sys
from pathlib import Path

from services.cli.codegen import main as codegen_main

ROOT = Path(__file__).resolve().parents[2]


def vigil(
    *args: str, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )


def test_token_device_prints_the_hmac(tmp_path: Path) -> None:
    key = "ab" * 32
    result = vigil(
        "token", "device", "press-7", "--state-dir", str(tmp_path), env={"VIGIL_DEVICE_SECRET": key}
    )
    assert result.returncode == 0, result.stderr
    assert (
        result.stdout.strip()
        == hmac.new(bytes.fromhex(key), b"press-7", hashlib.sha256).hexdigest()
    )


def test_token_without_secret_is_a_clear_error(tmp_path: Path) -> None:
    result = vigil(
        "token", "dashboard", "--state-dir", str(tmp_path), env={"VIGIL_DASHBOARD_SECRET": ""}
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith("vigil: VIGIL_DASHBOARD_SECRET is not set")
    assert "Traceback" not in result.stderr


def test_serve_on_a_busy_port_is_one_line_naming_it(redis_server: object, tmp_path: Path) -> None:
    url = redis_server.url  # type: ignore[attr-defined]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = vigil(
            "serve",
            "detector",
            env={"REDIS_URL": url, "VIGIL_GRPC_PORT": str(port), "VIGIL_METRICS_PORT": "0"},
        )
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"vigil detector: port 127.0.0.1:{port} (detector gRPC) is already in use"
    )


def test_serve_with_bad_setting_names_the_variable() -> None:
    result = vigil(
        "serve", "ingest", env={"VIGIL_DEVICE_SECRET": "ab" * 32, "VIGIL_MAX_IN_FLIGHT": "lots"}
    )
    assert result.returncode == 2
    assert "VIGIL_MAX_IN_FLIGHT='lots' is not an integer" in result.stderr
    assert "Traceback" not in result.stderr


def test_up_on_busy_ports_names_every_one(tmp_path: Path) -> None:
    with contextlib.ExitStack() as stack:
        for port in (8080, 6390):
            sock = stack.enter_context(socket.socket())
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            with contextlib.suppress(OSError):  # already busy: the point holds either way
                sock.bind(("127.0.0.1", port))
                sock.listen()
        result = vigil("up", "--no-simulator", "--state-dir", str(tmp_path))
    assert result.returncode == 2
    # Other default ports may be busy too on a shared machine; every busy one is named.
    assert result.stderr.startswith("vigil: ports ")
    assert "127.0.0.1:8080 (dashboard HTTP)" in result.stderr
    assert "127.0.0.1:6390 (Redis)" in result.stderr
    assert "are already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_generated_code_is_current() -> None:
    assert codegen_main(["--check", str(ROOT / "services" / "generated")]) == 0
