"""Gunicorn serving the real app against the test database, and a Redis the tests can kill.

The server is a subprocess: it sees what the test commits (`transactional_db`) through a
DATABASE_URL naming pytest's test database. Every wait here has a deadline, so a hang fails
the test instead of stalling the suite.
"""

import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from django.test import Client

from tests.helpers.routes import concrete_urls
from tests.helpers.seeded_world import seed
from tests.helpers.servers import AppServer, free_port, server_env, stop_all, wait_for

__all__ = ["REQUEST_TIMEOUT", "AppServer", "free_port", "wait_for"]  # the fault tests' imports

REQUEST_TIMEOUT = 15  # seconds a test waits for any one answer: longer counts as a hang


@pytest.fixture
def seeded(transactional_db):
    """Committed rows the server can see; the flush after the test removes them."""
    return seed()


@pytest.fixture
def app_server(transactional_db, tmp_path):
    """Start gunicorn with settings overrides: `app_server(API_WORKERS="2", ...)`."""
    servers = []

    def start(**overrides) -> AppServer:
        env = server_env(tmp_path, **overrides)
        server = AppServer(env=env, log_path=tmp_path / f"gunicorn-{len(servers)}.log")
        servers.append(server)
        return server.start()

    yield start
    stop_all(servers)


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
