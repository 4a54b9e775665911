"""Real processes in the production shape past one machine, started once per module and
stopped at the end, also on failure:

- app instances behind HAProxy, the edge cache (Varnish) in front; the tests commit their rows
  (`transactional_db`) and the cache is emptied between tests as everywhere;
- a replicated PostgreSQL of the tests' own (primary + streaming replica), migrated and seeded,
  and gunicorn serving the app against it with DATABASE_REPLICA_URLS. Needs Debian's
  PostgreSQL 15 binaries and the suite's Redis; skipped with the reason when either is missing.
"""

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
from django.conf import settings
from django.test import Client

from tests.helpers import pg_cluster
from tests.helpers.seeded_world import PASSWORD
from tests.helpers.servers import AppServer, wait_for

TIMEOUT = 15  # seconds a test waits for any one answer: longer counts as a hang


def session_cookies(user) -> dict:
    """A signed-in browser's cookies for `user` (the session is in the shared database)."""
    client = Client()
    client.force_login(user)
    return {name: morsel.value for name, morsel in client.cookies.items()}


def csrf_token(html: str) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert found, "no CSRF token in the form"
    return found.group(1)


def sign_in(session: requests.Session, base: str, username: str) -> SimpleNamespace:
    """The login form, as a browser fills it: (the form's answer, the sign-in's answer)."""
    form = session.get(f"{base}/accounts/login/", timeout=TIMEOUT)
    signed_in = session.post(
        f"{base}/accounts/login/",
        data={
            "username": username,
            "password": PASSWORD,
            "csrfmiddlewaretoken": csrf_token(form.text),
        },
        headers={"Referer": f"{base}/accounts/login/"},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    return SimpleNamespace(form=form, signed_in=signed_in)


@pytest.fixture
def world(transactional_db):
    """Committed rows the servers see: agents, users with the seeded password, tokens."""
    from tests.helpers.seeded_world import seed

    return seed()


ROOT = Path(settings.BASE_DIR)
DATABASE = "aios"
APP = "aios-replicas-app"  # the app's application_name: its statements in the servers' logs
KEY_PREFIX = "aios-replicas"

# Migrates the primary with the replica configured (migrations must go to the primary only)
# and seeds it through the services, as the app would.
PREPARE = """
import json
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from rest_framework.authtoken.models import Token
from tests.factories import UserFactory
from tests.helpers.seeded_world import seed
world = seed(agents=6)
racers = [UserFactory(username=f"racer{n}") for n in range(8)]
UserFactory(username="newcomer")
print(json.dumps({
    "agents": [agent.pk for agent in world.agents],
    "tokens": world.tokens,
    "racers": [Token.objects.create(user=user).key for user in racers],
}))
"""


def _base_env(cluster, var_dir: Path) -> dict:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DJANGO_SETTINGS_MODULE": "aios.settings",
        "AIOS_TESTING": "1",  # the test hasher and plain static files, as in pytest
        "AIOS_VAR_DIR": str(var_dir),
        "DATABASE_URL": cluster.primary.url(DATABASE),
        "DATABASE_REPLICA_URLS": cluster.replica.url(DATABASE),
        "REDIS_URL": settings.REDIS_URL,
        "CACHE_KEY_PREFIX": KEY_PREFIX,
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,
        "PGAPPNAME": APP,
        "LOG_FORMAT": "plain",
        "LOG_LEVEL": "WARNING",
    }


@pytest.fixture(scope="module")
def replicated():
    """The running pair, and what was seeded: agent ids, API tokens."""
    if not (settings.IS_POSTGRES and settings.REDIS_URL):
        pytest.skip("needs the PostgreSQL + Redis run (DATABASE_URL=postgres://..., REDIS_URL)")
    reason = pg_cluster.missing_tools()
    if reason:
        pytest.skip(reason)
    # Not pytest's tmp_path: its parents are closed to the postgres user.
    directory = Path(tempfile.mkdtemp(prefix="aios-replicas-"))
    cluster = pg_cluster.ReplicatedCluster(directory)
    try:
        cluster.start()
        cluster.primary.query(f"CREATE DATABASE {DATABASE}")
        env = _base_env(cluster, directory / "var")
        prepared = subprocess.run(
            [sys.executable, "-c", PREPARE],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert prepared.returncode == 0, prepared.stderr[-4000:]
        world = json.loads(prepared.stdout.strip().splitlines()[-1])
        cluster.wait_for_replay()
        yield SimpleNamespace(cluster=cluster, directory=directory, env=env, **world)
    finally:
        cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)


class ReplicaServer(AppServer):
    """gunicorn against the pair, with the app's view of its replica at /readyz."""

    def stop(self) -> None:
        # Killed, workers first: nothing of theirs outlives the module's throwaway cluster,
        # and a graceful stop (pools closing) costs seconds per server.
        if self.process and self.process.poll() is None:
            for pid in self.worker_pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.process.kill()
            self.process.wait(timeout=10)
        self.log.close()

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(self.url + path, timeout=15, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return requests.post(self.url + path, timeout=15, **kwargs)

    def replica_status(self) -> str:
        return self.get("/readyz").json()["replicas"]["replica_0"]["status"]

    def wait_for_replica(self, status: str, *, answers: int = 6, timeout: float = 20) -> None:
        """Until `answers` readiness answers in a row (any worker) report `status`."""
        seen = 0

        def steady():
            nonlocal seen
            seen = seen + 1 if self.replica_status() == status else 0
            return seen >= answers

        wait_for(steady, timeout=timeout, interval=0.05, what=f"the replica reported {status}")


@pytest.fixture(scope="module")
def start_server(replicated):
    """Start gunicorn on the pair with settings overrides; all stop with the module."""
    servers = []

    def start(**overrides) -> ReplicaServer:
        env = {
            **replicated.env,
            "API_WORKERS": "2",
            "API_THREADS": "4",
            "DATABASE_POOL_SIZE": "2",
            "DATABASE_MAX_OVERFLOW": "6",
            "API_THROTTLE_ANON": "100000/min",
            "API_THROTTLE_USER": "100000/min",
            "API_THROTTLE_SEARCH": "100000/min",
            "MONITORING_REPORT_INTERVAL": "0",
            # Its own: a server starting empties the metrics directory it is given.
            "AIOS_VAR_DIR": str(replicated.directory / f"var-{len(servers)}"),
            **overrides,
        }
        log_path = replicated.directory / f"gunicorn-{len(servers)}.log"
        server = ReplicaServer(env=env, log_path=log_path)
        servers.append(server)
        server.start()
        server.wait_for_replica("healthy")
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def server(start_server):
    """The module's main server, with the default check interval; a paused replica stays in
    use for 30 s (unless what is read needs newer data) so tests can pause it."""
    return start_server(DATABASE_REPLICA_MAX_LAG="30")


@pytest.fixture
def cluster(replicated):
    """The pair, with the replica running, replaying and caught up before and after."""
    replicated.cluster.ensure_replica_running()
    yield replicated.cluster
    replicated.cluster.ensure_replica_running()


class Watch:
    """The app's statements on each server between entering and leaving the block."""

    def __init__(self, cluster):
        self.cluster = cluster

    def __enter__(self):
        time.sleep(0.05)  # statements of requests answered just before are in the logs
        self.offsets = {s.name: s.log_size() for s in (self.cluster.primary, self.cluster.replica)}
        return self

    def __exit__(self, *exc):
        time.sleep(0.05)
        self.primary = self.cluster.primary.statements_since(self.offsets["primary"], APP)
        self.replica = self.cluster.replica.statements_since(self.offsets["replica"], APP)
        return False

    @staticmethod
    def reads(statements) -> list[str]:
        """SELECTs of the app's tables (not the pool's checks or session settings)."""
        return [s for s in statements if s.startswith("SELECT") and '"' in s]
