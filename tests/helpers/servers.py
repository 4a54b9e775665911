"""Real server processes for tests: gunicorn serving the app against pytest's test database,
and HAProxy with the committed deploy/haproxy/haproxy.cfg. Each takes a free port, logs to
a file of the test's own and is stopped by its fixture, also when the test fails; every wait
has a deadline, so a hang fails the test instead of stalling the suite. (Varnish:
bench.edge.Varnish, which `make bench` uses too.)
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import requests
from django.conf import settings
from django.db import connection

ROOT = Path(settings.BASE_DIR)
HAPROXY_CFG = ROOT / "deploy" / "haproxy" / "haproxy.cfg"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(check, *, timeout: float, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def database_url() -> str:
    """pytest's test database, as a DATABASE_URL for a server process."""
    db = connection.settings_dict
    auth = quote(db["USER"] or "")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"])
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@dataclass
class AppServer:
    env: dict
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, wait: bool = True) -> "AppServer":
        self.log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "aios/gunicorn.conf.py"],
            cwd=ROOT,
            env={**self.env, "BIND": f"127.0.0.1:{self.port}"},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        return self.wait_ready() if wait else self

    def wait_ready(self) -> "AppServer":
        wait_for(self._answers, timeout=30, interval=0.2, what=f"gunicorn on {self.url}")
        wait_for(lambda: len(self.worker_pids()) >= int(self.env["API_WORKERS"]), timeout=30)
        return self

    def _answers(self) -> bool:
        assert self.process.poll() is None, f"gunicorn exited:\n{self.logs()}"
        try:
            return requests.get(self.url + "/accounts/login/", timeout=2).status_code < 500
        except requests.RequestException:
            return False

    def worker_pids(self) -> set[int]:
        out = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(self.process.pid)], capture_output=True, text=True
        ).stdout
        return {int(pid) for pid in out.split()}

    def stop(self) -> None:
        stop_all([self])

    def _terminate(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def _reap(self) -> None:
        if self.process:
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if not self.log.closed:
            self.log.close()

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]


def stop_all(servers: list[AppServer]) -> None:
    """Stop gunicorns side by side (each takes seconds to shut down gracefully)."""
    for server in servers:
        server._terminate()
    for server in servers:
        server._reap()


def server_env(tmp_path: Path, **overrides) -> dict:
    """A gunicorn's environment: the app's production settings against the test database and
    the test Redis, small pools, plain logs; `overrides` on top."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DJANGO_SETTINGS_MODULE": "tests.faults.fault_settings",
        "AIOS_TESTING": "1",  # the test hasher and plain static files, as in pytest
        "AIOS_VAR_DIR": str(tmp_path / "var"),
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "CACHE_KEY_PREFIX": "aios-faults",
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,  # sessions made here must verify there
        "API_WORKERS": "2",
        "API_THREADS": "2",
        "DATABASE_POOL_SIZE": "2",
        "DATABASE_MAX_OVERFLOW": "2",
        "LOG_FORMAT": "plain",
        "PGAPPNAME": "gunicorn-fault-server",  # tells its backends from pytest's own
        "LOG_LEVEL": "WARNING",
        "API_THROTTLE_ANON": "100000/min",
        "API_THROTTLE_USER": "100000/min",
        **overrides,
    }


class HAProxy:
    """deploy/haproxy/haproxy.cfg in front of `backends` (host:port each), tagging answers
    with the instance that gave them (X-Served-By)."""

    def __init__(self, backends: list[str], *, log_path: Path):
        self.backends = backends
        self.log_path = log_path
        self.port = free_port()
        self.process = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "HAProxy":
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HAPROXY_BIND": f"127.0.0.1:{self.port}",
            "HAPROXY_SERVED_BY": "1",
            **{f"WEB_{n}": address for n, address in enumerate(self.backends, 1)},
        }
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [HAPROXY, "-db", "-f", str(HAPROXY_CFG)],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

        def listening():
            assert self.process.poll() is None, self.log_path.read_text()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return True
            except OSError:
                return False

        try:
            wait_for(listening, timeout=15, what=f"haproxy on {self.port}")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> bool:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self._log.close()
        return False
