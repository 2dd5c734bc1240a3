"""Start `vigil up` as a real process tree and wait until it says it is ready."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

READY_LINE = "Dashboard: "


@contextmanager
def vigil_up(state_dir: Path, *extra: str, timeout_s: float = 90.0) -> Iterator[dict[str, Any]]:
    """Yield the stack description once `vigil up` has printed the dashboard URL."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "services.cli",
            "up",
            "--free-ports",
            "--state-dir",
            str(state_dir),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: list[str] = []
    ready = threading.Event()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip())
            if line.startswith(READY_LINE):
                ready.set()
        ready.set()

    threading.Thread(target=pump, daemon=True).start()
    try:
        if not ready.wait(timeout_s) or process.poll() is not None:
            raise RuntimeError("vigil up did not become ready:\n" + "\n".join(lines[-40:]))
        state = json.loads((state_dir / "stack.json").read_text())
        state["log"] = lines
        state["secrets"] = json.loads((state_dir / "secrets.json").read_text())
        yield state
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()
