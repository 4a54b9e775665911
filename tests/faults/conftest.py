"""Gunicorn serving the real app against the test database, and a Redis the tests can kill.

The server is a subprocess: it sees what the test commits (`transactional_db`) through a
DATABASE_URL naming pytest's test database. Every wait here has a deadline, so a hang fails
the test instead of stalling the suite.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from django.conf import settings
from django.db import connection
from django.test import Client

from tests.helpers.routes import concrete_urls
from tests.helpers.seeded_world import seed

ROOT = Path(settings.BASE_DIR)
REQUEST_TIMEOUT = 15  # seconds a test waits for any one answer: longer counts as a hang


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


def _database_url() -> str:
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

    def start(self) -> "AppServer":
        self.log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "aios/gunicorn.conf.py"],
            cwd=ROOT,
            env={**self.env, "BIND": f"127.0.0.1:{self.port}"},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
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
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.log.close()

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]


@pytest.fixture
def seeded(transactional_db):
    """Committed rows the server can see; the flush after the test removes them."""
    return seed()


@pytest.fixture
def app_server(transactional_db, tmp_path):
    """Start gunicorn with settings overrides: `app_server(API_WORKERS="2", ...)`."""
    servers = []

    def start(**overrides) -> AppServer:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "DJANGO_SETTINGS_MODULE": "tests.faults.fault_settings",
            "AIOS_TESTING": "1",  # the test hasher and plain static files, as in pytest
            "AIOS_VAR_DIR": str(tmp_path / "var"),
            "DATABASE_URL": _database_url(),
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
        server = AppServer(env=env, log_path=tmp_path / f"gunicorn-{len(servers)}.log")
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@dataclass
class RedisServer:
    port: int
    directory: Path
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._ping, timeout=10, what=f"redis-server on {self.port}")
        return self

    def _ping(self) -> bool:
        try:
            return self.client().ping()
        except Exception:
            return False

    def client(self):
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def redis_server(tmp_path):
    """A redis-server of this test's own on a free port (kill it, start it again)."""
    import shutil

    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    server = RedisServer(port=free_port(), directory=tmp_path)
    yield server.start()
    server.kill()


# --- Walking every page and endpoint -----------------------------------------------------------


@dataclass
class Identity:
    name: str
    cookies: dict
    headers: dict


def identities(seed) -> list[Identity]:
    """Anonymous, the owner (session + token) and staff (session + token)."""
    found = [Identity("anonymous", {}, {})]
    for user in (seed.owner, seed.staff):
        client = Client()
        client.force_login(user)
        cookies = {name: morsel.value for name, morsel in client.cookies.items()}
        headers = {"Authorization": f"Token {seed.tokens[user.username]}"}
        found.append(Identity(user.username, cookies, headers))
    return found


def walk(base_url: str, seed, *, who=None) -> list[tuple[str, str, int | str]]:
    """GET every route as each identity: [(identity, path, status or error)]."""
    targets = [
        (identity, path)
        for identity in (who or identities(seed))
        for route, path in concrete_urls(seed)
        if not (route.is_admin and identity.name == "anonymous")  # one login redirect is enough
    ]

    def fetch(target):
        identity, path = target
        try:
            response = requests.get(
                base_url + path,
                cookies=identity.cookies,
                headers=identity.headers,
                timeout=REQUEST_TIMEOUT,
                allow_redirects=False,
            )
            return identity.name, path, response.status_code
        except requests.RequestException as exc:
            return identity.name, path, type(exc).__name__

    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(fetch, targets))


def failures(results) -> list:
    """Results that are a server error or no answer at all."""
    return [r for r in results if not isinstance(r[2], int) or r[2] >= 500]
