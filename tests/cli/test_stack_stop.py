"""Ctrl-C on `vigil up` under load stops the stack in order, with nothing lost.

A terminal's Ctrl-C signals the whole foreground process group. When Redis and every
service got it at once, Redis was gone before the others had finished: the detector's
final snapshot failed, ingest's last commits and the devices' goodbyes ("could not
mark the device offline") too. Now only `vigil up` gets it and stops the devices,
then ingest, then the other services, then Redis.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from services.common import keys
from services.common.embedded_redis import EmbeddedRedis

ROOT = Path(__file__).resolve().parents[2]
DEVICES = 10


def wait_for(predicate: Callable[[], object], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)  # polling another process's state: there is no event to await


@pytest.mark.timeout(120)
def test_ctrl_c_stops_the_stack_in_order_and_loses_nothing(tmp_path: Path) -> None:
    state_dir = tmp_path / "stack"
    process = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "up", "--free-ports", "--state-dir",
         str(state_dir), "--devices", str(DEVICES), "--rate", "4"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,  # its own process group, as a shell gives a job
    )  # fmt: skip
    lines: list[str] = []
    pump = threading.Thread(
        target=lambda: lines.extend(line.rstrip() for line in process.stdout or ()), daemon=True
    )
    pump.start()
    try:
        wait_for((state_dir / "stack.json").exists, 90)
        url = json.loads((state_dir / "stack.json").read_text())["redis_url"]
        client = redis.Redis.from_url(url, decode_responses=True)
        # Under load: every simulated device connected and sending.
        wait_for(lambda: client.hlen(keys.DEVICES) == DEVICES, 30)
        wait_for(lambda: int(client.xlen(keys.history("sim-0000"))) >= 4, 30)
        client.close()
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    pump.join(10)  # until the end of the output: every process of the stack has exited
    assert not pump.is_alive()
    assert process.stdout is not None
    process.stdout.close()
    noisy = [line for line in lines if " WARNING " in line or " ERROR " in line]
    assert noisy == [], "\n".join(noisy)
    stopped = [line.split()[2] for line in lines if line.endswith(": stopped")]
    assert stopped[0] == "ingest:", stopped
    assert sorted(stopped) == ["analyzer:", "detector:", "ingest:", "notifier:"]
    # What the services wrote last is in Redis's append-only file.
    with EmbeddedRedis(state_dir / "redis") as server:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        records = [json.loads(v) for v in client.hvals(keys.DEVICES)]
        assert [r["status"] for r in records] == ["offline"] * DEVICES
        assert client.hlen(keys.detector_state("0")) == DEVICES
        client.close()
