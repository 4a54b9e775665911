"""Redis behind Sentinel (aios/redis_ha.py), with real processes: a master, its replica and
three sentinels of the test's own (sentinel_cluster.py), the app pointed at them as the
environment would (REDIS_SENTINELS and the rest).

Every Redis user goes to the master Sentinel names; killing that master under load costs no
5xx, and caching and throttles resume on the promoted replica; a bump the replica never
received does not bring back the copy it retired. The failover test prints what it measured
(`pytest -s tests/scale/test_sentinel.py`). Skips where redis-server is missing; runs on the
embedded default and on PostgreSQL alike (the app runs in this process).
"""

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import pytest
from django.conf import settings as django_settings
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test import Client
from rest_framework.authtoken.models import Token

from aios import redis_ha, response_cache
from aios.monitoring import window
from aios.response_cache import EPOCH_NS, Entry
from tests.factories import AgentFactory, UserFactory
from tests.faults.conftest import wait_for
from tests.scale.sentinel_cluster import SentinelCluster

PASSWORD = "correct horse battery staple"  # every factory user's
TOKEN_URL = "/api/v1/auth/token/"


@pytest.fixture
def cluster(tmp_path):
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    found = SentinelCluster(tmp_path, password="redis-secret", sentinel_password="sentinel-secret")
    try:
        found.start()
        yield found
    finally:
        found.stop()


@pytest.fixture
def sentinel(cluster, settings):
    """The app's Redis is the cluster, found through its sentinels."""
    for name, value in cluster.settings().items():
        setattr(settings, name, value)
    settings.CACHES = {
        "default": {
            **redis_ha.sentinel_cache(
                sentinels=settings.REDIS_SENTINELS,
                master=settings.REDIS_SENTINEL_MASTER,
                db=settings.REDIS_SENTINEL_DB,
                password=settings.REDIS_PASSWORD,
                sentinel_password=settings.REDIS_SENTINEL_PASSWORD,
                options=settings.REDIS_CACHE_OPTIONS,
            ),
            "KEY_PREFIX": settings.CACHE_KEY_PREFIX,
            "TIMEOUT": settings.CACHE_TTL,
        }
    }
    settings.LOGIN_FAILURES_PER_ACCOUNT = 3
    try:
        yield cluster
    finally:
        response_cache.store().reset_near()  # its connections go to this cluster
        redis_ha.reset_clients()


def by_hit_path(response) -> bool:
    return getattr(response, "answered_by_hit_path", False)


def raw_key(key: str) -> str:
    return caches["default"].make_key(key)


def warm(client, url) -> None:
    for _ in range(3):
        if by_hit_path(client.get(url)):
            return
    raise AssertionError(f"{url} never came from the hit path")


def failed_sign_ins_until_throttled(client) -> list[int]:
    user = UserFactory()

    def sign_in(password):
        body = {"username": user.username, "password": password}
        return client.post(TOKEN_URL, body, content_type="application/json").status_code

    return [sign_in("wrong") for _ in range(3)] + [sign_in(PASSWORD)]


# --- Settings ----------------------------------------------------------------------------------


def test_sentinel_addresses_are_read_as_host_and_port():
    assert redis_ha.parse_sentinels(["10.0.0.1:26379", " [::1]:26380"]) == [
        ("10.0.0.1", 26379),
        ("::1", 26380),
    ]
    for wrong in ("10.0.0.1", "10.0.0.1:", ":26379", "host:port", "host:70000"):
        with pytest.raises(ImproperlyConfigured):
            redis_ha.parse_sentinels([wrong])


def _settings_from(var_dir, **env) -> subprocess.CompletedProcess:
    code = (
        "import json; from django.conf import settings as s; c = s.CACHES['default'];"
        "print(json.dumps([c['BACKEND'], c['LOCATION'], c['OPTIONS']]))"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        env={
            "PATH": os.environ["PATH"],
            "DJANGO_SETTINGS_MODULE": "aios.settings",
            "AIOS_VAR_DIR": str(var_dir),
            **env,
        },
        cwd=django_settings.BASE_DIR,
        capture_output=True,
        text=True,
    )


def test_the_environment_puts_the_cache_behind_sentinel(tmp_path):
    found = _settings_from(
        tmp_path,
        REDIS_URL="redis://127.0.0.1:1/0",  # Sentinel takes its place
        REDIS_SENTINELS="10.0.0.1:26379,10.0.0.2:26379",
        REDIS_SENTINEL_MASTER="aios",
        REDIS_SENTINEL_DB="3",
        REDIS_PASSWORD="p",
        REDIS_SENTINEL_PASSWORD="sp",
    )
    assert found.returncode == 0, found.stderr[-2000:]
    backend, location, options = json.loads(found.stdout)
    assert backend == "aios.cache.ResilientRedisCache"
    assert location == "redis://aios/3"
    assert options["CONNECTION_FACTORY"] == "aios.redis_ha.SentinelConnectionFactory"
    assert options["SENTINELS"] == [["10.0.0.1", 26379], ["10.0.0.2", 26379]]
    assert options["PASSWORD"] == "p" and options["SENTINEL_KWARGS"]["password"] == "sp"
    assert options["CIRCUIT_BREAKER_SECONDS"] == 5.0  # the breaker as with REDIS_URL

    refused = _settings_from(tmp_path, REDIS_SENTINELS="10.0.0.1:26379")
    assert refused.returncode != 0
    assert "REDIS_SENTINEL_MASTER" in refused.stderr


def test_sentinels_without_a_service_name_are_refused():
    with pytest.raises(ImproperlyConfigured, match="REDIS_SENTINEL_MASTER"):
        redis_ha.sentinel_cache(
            sentinels=["127.0.0.1:26379"], master="", db=0, password="", sentinel_password="",
            options={},
        )  # fmt: skip


# --- Through Sentinel --------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db
def test_cache_throttles_and_monitoring_all_use_the_master_sentinel_names(sentinel, client):
    master = sentinel.client(sentinel.master_port())
    AgentFactory.create_batch(3)
    warm(client, "/api/v1/marketplace/agents/")
    assert list(master.scan_iter(raw_key("rc:e:*")))

    # The first connection recorded the master's run id: no takeover is pending.
    owner = master.get(raw_key(redis_ha.OWNER_KEY)).decode()
    assert owner == master.info("server")["run_id"]

    assert failed_sign_ins_until_throttled(client) == [400, 400, 400, 429]
    assert list(master.scan_iter(raw_key("throttle:login:*")))

    ready = client.get("/readyz").json()
    assert ready["checks"]["cache"]["ok"], ready
    metrics = client.get("/metrics").content.decode()
    assert "\naios_redis_up 1.0\n" in metrics
    state = {"worker": "sentinel-test", "ts": time.time()}
    assert window.flush(state) is True
    assert master.exists(f"{django_settings.MONITORING_KEY_PREFIX}:w:sentinel-test")

    # Nothing was written to the replica directly: it holds what the master sent it.
    master.wait(1, 5000)
    replica = sentinel.client(sentinel.replica().port)
    assert replica.info("replication")["role"] == "slave"
    assert replica.dbsize() == master.dbsize()


@dataclass
class Answer:
    started: float
    url: str
    outcome: int | str  # the status, or the exception that took its place
    hit: bool


class Load:
    """Threads of anonymous and signed-in GETs through the hit path until stopped. Each
    request comes from an address of its own, so the rate limits never answer for them."""

    def __init__(self, urls: list[str], token: str, threads: int = 4):
        self.urls, self.token, self.threads = urls, token, threads
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._workers = [threading.Thread(target=self._run, args=(n,)) for n in range(threads)]

    def _run(self, number: int) -> None:
        client = Client(raise_request_exception=False)
        signed_in = {"HTTP_AUTHORIZATION": f"Token {self.token}"}
        n = 0
        try:
            while not self._stop.is_set():
                url = self.urls[n % len(self.urls)]
                extra = signed_in if n % 3 == 0 else {}
                address = f"10.{number}.{n // 250 % 250}.{n % 250 + 1}"
                started = time.monotonic()
                try:
                    response = client.get(url, REMOTE_ADDR=address, **extra)
                    outcome, hit = response.status_code, by_hit_path(response)
                except Exception as exc:  # counted as a failure below
                    outcome, hit = type(exc).__name__, False
                with self._lock:
                    self.answers.append(Answer(started, url, outcome, hit))
                n += 1
        finally:
            connection.close()

    def __enter__(self) -> "Load":
        for worker in self._workers:
            worker.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=30)

    def hits_since(self, moment: float) -> int:
        with self._lock:
            return sum(a.hit for a in self.answers if a.started >= moment)

    def first_hit_after(self, moment: float) -> float | None:
        with self._lock:
            return min(
                (a.started for a in self.answers if a.hit and a.started > moment), default=None
            )


@pytest.mark.slow
def test_killing_the_master_under_load_costs_no_5xx_and_caching_and_throttles_resume(
    sentinel, transactional_db
):
    agents = AgentFactory.create_batch(4)
    token = Token.objects.create(user=UserFactory()).key
    urls = [
        "/",
        "/agents/",
        f"/agents/{agents[0].slug}/",
        "/api/v1/marketplace/agents/",
        "/api/v1/marketplace/categories/",
        *(f"/api/v1/agents/{agent.pk}/" for agent in agents),
    ]
    for url in urls:
        warm(Client(), url)
    old = sentinel.master()

    with Load(urls, token) as load:
        time.sleep(1.0)
        killed_at = sentinel.kill(old)
        switched_at = wait_for(
            lambda: sentinel.master_port() not in (None, old.port) and time.monotonic(),
            timeout=30,
            interval=0.05,
            what="Sentinel to promote the replica",
        )
        resumed_at = wait_for(
            lambda: load.first_hit_after(killed_at), timeout=30, what="a hit on the new master"
        )
        wait_for(lambda: load.hits_since(resumed_at) >= 50, timeout=30, what="hits to go on")

    answers = load.answers
    failures = [a for a in answers if not isinstance(a.outcome, int) or a.outcome >= 500]
    during = [a for a in answers if killed_at < a.started < resumed_at]
    after = [a for a in answers if a.started >= resumed_at]
    print(
        f"\nSentinel failover under load: {len(answers)} requests on {load.threads} threads, "
        f"{len(failures)} 5xx or errors; replica promoted {switched_at - killed_at:.2f} s after "
        f"the kill, first cache hit on it {resumed_at - killed_at:.2f} s after; "
        f"{len(during)} requests answered uncached meanwhile, "
        f"{sum(a.hit for a in after)} of {len(after)} hits since"
    )
    assert not failures, failures[:10]
    assert during and not any(a.hit for a in during)  # the dead master's copies stayed dead
    assert resumed_at > switched_at

    promoted = sentinel.client(sentinel.master_port())
    assert list(promoted.scan_iter(raw_key("rc:e:*")))
    assert failed_sign_ins_until_throttled(Client()) == [400, 400, 400, 429]
    assert list(promoted.scan_iter(raw_key("throttle:login:*")))


@pytest.mark.slow
def test_a_bump_the_promoted_replica_missed_does_not_bring_back_the_copy_it_retired(
    sentinel, transactional_db
):
    agent = AgentFactory(name="Old name", slug="renamed", tagline="Translates documents")
    url = f"/api/v1/agents/{agent.pk}/"
    client = Client()
    warm(client, url)
    master, replica = sentinel.master(), sentinel.replica()
    assert sentinel.client(master.port).wait(1, 5000) == 1  # the replica has the copy

    # Replication stops (the replica frozen, its link cut: what the master had sent is all it
    # will get); the rename's bump reaches the master alone, and dies with it.
    sentinel.pause(replica)
    try:
        sentinel.client(master.port).client_kill_filter(_type="replica")
        agent.name = "New name"
        agent.save()  # retires the agent's namespace on commit: at once here
        assert b"New name" in client.get(url).content
        sentinel.kill(master)
    finally:
        sentinel.resume(replica)
    wait_for(lambda: sentinel.master_port() == replica.port, timeout=30, what="the promotion")

    # The promoted replica holds the old copy and every version it recorded: as it stands,
    # that copy would be served.
    promoted = sentinel.client(replica.port)
    copies = [Entry.decode(promoted.get(key)) for key in promoted.scan_iter(raw_key("rc:e:*"))]
    old = [entry for entry in copies if b"Old name" in entry.body]
    assert old
    for entry in old:
        for namespace, version in entry.deps.items():
            assert int(promoted.get(raw_key(f"rc:v:{namespace}"))) == version

    bodies = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        response = client.get(url)
        assert response.status_code == 200
        bodies.append(response.content)
        if by_hit_path(response):
            break
        time.sleep(0.2)
    assert by_hit_path(response), "caching never resumed on the promoted replica"
    assert all(b"New name" in body and b"Old name" not in body for body in bodies)
    # The app's first connection to it started a new epoch before reading anything.
    epoch = int(promoted.get(raw_key(f"rc:v:{EPOCH_NS}")))
    assert all(entry.deps[EPOCH_NS] != epoch for entry in old)
    assert promoted.get(raw_key(redis_ha.OWNER_KEY)).decode() == promoted.info()["run_id"]
