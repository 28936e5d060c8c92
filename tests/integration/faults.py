"""What the fault tests break on purpose: a TCP proxy that can be cut, and a Redis of their own;
and the store they start from.

Both are real: the proxy forwards bytes between the api and the shared PostgreSQL, the Redis is
a `redis-server` process on a free port (the shared one on 6379 is never touched).
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from core.registry import Registry
from core.store.db import Database, upgrade
from tests.factories import register_champion
from tuneloop.processes import free_port


class TcpProxy:
    """Forwards 127.0.0.1:`port` to `target`; `cut()` drops every connection and refuses new
    ones, as a dead database host would; `restore()` listens on the same port again."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        """Accept connections again (a no-op while open)."""
        if self._listener is not None:
            return
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def cut(self) -> None:
        """Close the listener and every forwarded connection."""
        if self._listener is not None:
            _close(self._listener)  # shutdown wakes the accept() blocked in its thread
            self._listener = None
        with self._lock:
            for conn in self._open:
                _close(conn)
            self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open.update((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        with suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with self._lock:
            self._open.difference_update((src, dst))
        _close(src)
        _close(dst)


def _close(sock: socket.socket) -> None:
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


class RedisServer:
    """A private, memory-only `redis-server` on a free port that the test can kill and restart."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
        self.binary = binary
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it (again, on the same port) and wait until it answers PING."""
        log = (self.folder / "redis.log").open("a")
        # No persistence: a restarted Redis is empty, the harder case (every message is gone).
        options = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), *options, "--dir", str(self.folder)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_until(self._pings, timeout=10, what="redis-server to answer")

    def kill(self) -> None:
        """SIGKILL it, as a crash or an OOM killer would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def _pings(self) -> bool:
        import redis

        try:
            return bool(redis.Redis.from_url(self.url, socket_timeout=1).ping())
        except redis.RedisError:
            return False


@contextmanager
def redis_server(folder: Path) -> Iterator[RedisServer]:
    """A started private Redis, killed at the end."""
    server = RedisServer(folder)
    server.start()
    try:
        yield server
    finally:
        server.kill()


def wait_until(check: Callable[[], bool], *, timeout: float, what: str, every: float = 0.2) -> None:
    """Poll `check` until it holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(every)


def counted(exposition: str, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`, from a /metrics text."""
    from prometheus_client.parser import text_string_to_metric_families

    return sum(
        sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def server_errors(exposition: str) -> dict[str, float]:
    """Requests the api answered with a 5xx other than 503, by route (a /metrics text)."""
    from prometheus_client.parser import text_string_to_metric_families

    errors: dict[str, float] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            status = sample.labels.get("status", "")
            failed = status[:1] == "5" and status != "503" and sample.value
            if sample.name == "tuneloop_api_requests_total" and failed:
                errors[sample.labels["route"]] = sample.value
    return errors


def champion_store(folder: Path, artifact: Path) -> tuple[str, Database, Registry]:
    """A migrated SQLite store in `folder` whose champion v1 is a copy of `artifact`: its url, the
    database and the registry."""
    url = f"sqlite:///{folder / 'tuneloop.db'}"
    upgrade(url)
    db = Database(url)
    return url, db, register_champion(db, folder / "artifacts", artifact)
