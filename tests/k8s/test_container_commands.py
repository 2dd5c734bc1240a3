"""The image cannot be built here (no container engine), so this runs what the image
would run: each container's exact command line from the rendered manifests, with the
env the cluster would give it, against the local install, and probes it as the
kubelet would (gRPC health, HTTP /healthz and /readyz). Redis runs from its
container's command line too, so the password and AOF flags are exercised."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from redis.asyncio import Redis

from services.cli.k8s_check.render import Overlay, overlay_dirs, render
from services.common.bootstrap import health_check
from services.common.embedded_redis import find_redis_server
from tests.support.clients import device_stream, reading, token_for
from tests.support.k8s_tools import ROOT, k8s_tools
from tests.support.pods import LocalCluster, LocalPod

#: The keys of the Secret the README tells operators to create (OPENAI_API_KEY is
#: optional and left out, so the analyzer runs its built-in analysis).
SECRET_KEYS = ("REDIS_PASSWORD", "VIGIL_DEVICE_SECRET", "VIGIL_DASHBOARD_SECRET")
OVERLAYS = [d.name for d in overlay_dirs(ROOT)]


def generated_secrets() -> dict[str, str]:
    return {key: secrets.token_hex(32) for key in SECRET_KEYS}


@contextlib.asynccontextmanager
async def started(
    pod: LocalPod, logs: Path, extra: tuple[str, ...] = ()
) -> AsyncIterator[asyncio.subprocess.Process]:
    log = (logs / f"{pod.pod_name}.log").open("w")
    process = await asyncio.create_subprocess_exec(
        *pod.argv,
        *extra,
        env={"PATH": str(Path(sys.executable).parent), **pod.env},
        stdout=log,
        stderr=asyncio.subprocess.STDOUT,
        cwd=logs,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        log.close()


async def probe(pod: LocalPod, http: aiohttp.ClientSession) -> list[str]:
    """The probes of the container that do not pass yet."""
    failing = []
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        spec = pod.container.get(kind)
        if spec is None:
            continue
        if "grpc" in spec:
            ok = await health_check(f"127.0.0.1:{pod.local(spec['grpc']['port'])}", 1.0)
        else:
            url = f"http://127.0.0.1:{pod.local(spec['httpGet']['port'])}{spec['httpGet']['path']}"
            try:
                async with http.get(url) as response:
                    ok = response.status == 200
            except aiohttp.ClientError:
                ok = False
        if not ok:
            failing.append(kind)
    return failing


def startup_budget_s(pod: LocalPod) -> float:
    """As long as the kubelet would wait: the startup probe's periods x failures."""
    spec = pod.container["startupProbe"]
    return float(spec["periodSeconds"] * spec["failureThreshold"])


def tail(logs: Path, pod: LocalPod) -> str:
    return "\n".join((logs / f"{pod.pod_name}.log").read_text().splitlines()[-20:])


@pytest.fixture(scope="module")
def rendered() -> dict[str, Overlay]:
    tools = k8s_tools()
    return {name: render(tools.kubectl, ROOT / "k8s" / "overlays" / name) for name in OVERLAYS}


@pytest.mark.parametrize("overlay", OVERLAYS)
async def test_every_container_command_from_the_manifests_becomes_healthy(
    overlay: str, rendered: dict[str, Overlay], tmp_path: Path
) -> None:
    vigil = shutil.which("vigil", path=str(Path(sys.executable).parent))
    assert vigil is not None, "the local install has no vigil command"
    keys = generated_secrets()
    cluster = LocalCluster(
        rendered[overlay], keys, tmp_path, {"vigil": vigil, "redis-server": find_redis_server()}
    )
    assert cluster.unresolved() == {}
    services = [p for p in cluster.pods if p.argv[0] == vigil]
    assert sorted(p.name for p in services) == ["analyzer", "detector", "ingest", "notifier"]
    assert all(p.argv[1:] == ["serve", p.name] for p in services)

    redis_pod = cluster.pod("redis")
    # A container has its own network namespace; here every pod shares loopback, so
    # Redis is told its local port (the services reach it by the manifest's REDIS_URL).
    redis_port = redis_pod.local("redis")
    async with started(redis_pod, tmp_path, ("--port", str(redis_port), "--bind", "127.0.0.1")):
        client = Redis(port=redis_port, password=keys["REDIS_PASSWORD"])
        try:
            async with asyncio.timeout(20):
                while True:
                    with contextlib.suppress(Exception):
                        if await client.ping():
                            break
                    await asyncio.sleep(0.1)  # redis-server has no readiness signal to await
            assert await client.config_get("appendonly") == {"appendonly": "yes"}
        finally:
            await client.aclose()

        async with contextlib.AsyncExitStack() as stack:
            processes = {
                p.name: await stack.enter_async_context(started(p, tmp_path)) for p in services
            }
            async with aiohttp.ClientSession() as http:
                pending = {p.name: p for p in services}
                deadline = time.monotonic() + max(map(startup_budget_s, services))
                while pending:
                    for name, pod in list(pending.items()):
                        assert processes[name].returncode is None, (
                            f"{name} exited {processes[name].returncode}:\n{tail(tmp_path, pod)}"
                        )
                        if not await probe(pod, http):
                            pending.pop(name)
                    assert time.monotonic() < deadline, {
                        n: tail(tmp_path, p) for n, p in pending.items()
                    }
                    if pending:
                        await asyncio.sleep(0.2)  # the kubelet polls probes too

            # The wiring works end to end: a device's batch goes through ingest to the
            # detector (VIGIL_DETECTOR_ADDRS) and is committed to Redis (REDIS_URL).
            ingest = cluster.pod("ingest")
            token = token_for(keys["VIGIL_DEVICE_SECRET"], "press-1")
            async with device_stream(f"127.0.0.1:{ingest.local('grpc')}", token) as device:
                await device.hello("press-1")
                ack = await device.send(1, [reading("temperature", 120.0)])
            assert ack.seq == 1 and ack.anomalies[0].sensor == "temperature"

            # SIGTERM (what the kubelet sends after preStop) drains each service within
            # its pod's terminationGracePeriodSeconds, exit code 0.
            for process in processes.values():
                process.send_signal(signal.SIGTERM)
            for pod in services:
                grace = pod.workload["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
                code = await asyncio.wait_for(processes[pod.name].wait(), grace)
                assert code == 0, tail(tmp_path, pod)
