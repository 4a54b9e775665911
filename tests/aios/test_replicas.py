"""aios.replicas without a replica running: what the settings build from DATABASE_REPLICA_URLS,
what they refuse, the default's single database, how lag is told, and floors that only rise.
The routing itself runs against a real streaming replica in tests/scale."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from aios import replicas, response_cache
from aios.replicas import staleness

ROOT = Path(settings.BASE_DIR)
PRIMARY_URL = "postgres://app@127.0.0.1:1/aios"  # never connected to: settings only
REPLICA_URLS = "postgres://app@127.0.0.1:2/aios,postgres://app@127.0.0.1:3/aios?sslmode=require"

SHOW = """
import json
import django
django.setup()
from django.conf import settings
from django.db import router
print(json.dumps({
    "databases": settings.DATABASES,
    "routers": settings.DATABASE_ROUTERS,
    "middleware": settings.MIDDLEWARE,
    "migrate": {alias: router.allow_migrate(alias, "marketplace") for alias in settings.DATABASES},
}, default=str))
"""


def _settings(env: dict, tmp_path) -> subprocess.CompletedProcess:
    """A fresh interpreter's settings with only `env` set."""
    base = {"PATH": "/usr/bin:/bin", "AIOS_VAR_DIR": str(tmp_path), "AIOS_TESTING": "1",
            "DJANGO_SETTINGS_MODULE": "aios.settings"}  # fmt: skip
    return subprocess.run(
        [sys.executable, "-c", SHOW],
        env={**base, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_one_database_has_no_router_no_routing_middleware_and_reads_the_primary():
    assert settings.DATABASE_REPLICAS == []
    assert list(settings.DATABASES) == ["default"]
    assert settings.DATABASE_ROUTERS == []
    assert not any("replicas" in name for name in settings.MIDDLEWARE)
    assert replicas.read_alias() == "default"
    assert response_cache.fill_floor(["lists", "*"]) == 0


def test_each_replica_url_becomes_an_alias_with_the_primarys_engine_options(tmp_path):
    shown = _settings(
        {"DATABASE_URL": PRIMARY_URL, "DATABASE_REPLICA_URLS": REPLICA_URLS,
         "REDIS_URL": "redis://127.0.0.1:1/0"},
        tmp_path,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    found = json.loads(shown.stdout.strip().splitlines()[-1])
    primary = found["databases"]["default"]
    assert list(found["databases"]) == ["default", "replica_0", "replica_1"]
    for alias, port in (("replica_0", 2), ("replica_1", 3)):
        replica = found["databases"][alias]
        assert (replica["HOST"], replica["PORT"]) == ("127.0.0.1", port)
        assert replica["ENGINE"] == primary["ENGINE"]
        assert replica["OPTIONS"]["options"] == primary["OPTIONS"]["options"]
        assert replica["OPTIONS"]["pool"] == {**primary["OPTIONS"]["pool"], "timeout": 1.0}
        assert replica["TEST"]["MIRROR"] == "default"
    assert found["databases"]["replica_1"]["OPTIONS"]["sslmode"] == "require"  # its own kept
    assert found["routers"] == ["aios.replicas.PrimaryReplicaRouter"]
    assert found["migrate"] == {"default": True, "replica_0": False, "replica_1": False}
    middleware = found["middleware"]
    # Routing opens outside the sessions (a sign-in's session is saved before its floor is
    # left); the retry runs before the overload guard turns a replica's error into a 503.
    assert (
        middleware.index("aios.response_cache.StoreCopyMiddleware")
        < middleware.index("aios.replicas.RoutingMiddleware")
        < middleware.index("django.contrib.sessions.middleware.SessionMiddleware")
    )
    assert middleware.index("aios.resilience.DatabaseOverloadMiddleware") < middleware.index(
        "aios.replicas.RetryOnPrimaryMiddleware"
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "DATABASE_REPLICA_URLS needs PostgreSQL"),
        ({"DATABASE_URL": PRIMARY_URL}, "DATABASE_REPLICA_URLS needs REDIS_URL"),
        (
            {
                "DATABASE_URL": PRIMARY_URL,
                "REDIS_URL": "redis://127.0.0.1:1/0",
                "DATABASE_REPLICA_URLS": "mysql://app@127.0.0.1/aios",
            },
            "replica 0 is not postgres://",
        ),
    ],
    ids=["embedded-sqlite", "no-redis", "not-postgres"],
)
def test_replica_urls_are_refused_where_they_cannot_work(env, message, tmp_path):
    shown = _settings({"DATABASE_REPLICA_URLS": REPLICA_URLS, **env}, tmp_path)
    assert shown.returncode != 0
    assert "ImproperlyConfigured" in shown.stderr
    assert message in shown.stderr


def test_a_replica_that_reached_the_primarys_position_is_not_behind():
    assert staleness([(10.0, 500)], replay=500, primary=500, now=10.0, reported=99) == 0.0


def test_lag_is_the_age_of_the_newest_primary_position_the_replica_reached():
    samples = [(1.0, 100), (2.0, 200), (3.0, 300), (4.0, 400)]
    assert staleness(samples, replay=250, primary=400, now=4.0, reported=None) == 2.0
    assert staleness(samples, replay=399, primary=400, now=4.5, reported=None) == 1.5


def test_without_a_sample_it_reached_the_replicas_own_estimate_counts():
    samples = [(3.0, 300), (4.0, 400)]
    assert staleness(samples, replay=250, primary=400, now=4.0, reported=7.5) == 7.5
    assert staleness(samples, replay=250, primary=400, now=4.0, reported=0.2) == 1.0
    assert staleness([], replay=0, primary=None, now=4.0, reported=None) == float("inf")


def test_credentials_are_known_by_session_and_by_authorization_as_drf_reads_it():
    keys = replicas.credential_keys({settings.SESSION_COOKIE_NAME: "s1"}, "Token abc")
    assert len(keys) == 2
    assert replicas.credential_keys({}, "token   abc") == keys[1:]
    assert replicas.credential_keys({}, "") == []


@pytest.mark.redis
def test_a_floor_only_rises_and_expires():
    store = response_cache.store()
    key = "rc:n:test-floor"
    store.raise_floors({key: 2_000}, timeout=30)
    store.raise_floors({key: 1_000}, timeout=30)  # an older write's, arriving late
    assert store.get_many([key]) == {key: 2_000}
    store.raise_floors({key: 3_000}, timeout=30)
    assert store.get_many([key]) == {key: 3_000}
    redis = store._redis()
    raw = store._raw(key)
    assert 0 < redis.pttl(raw) <= 30_000
