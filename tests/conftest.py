import pytest
from django.conf import settings
from django.core.cache import cache, caches
from django.db import connection

from aios import response_cache
from aios.cache import ResilientRedisCache
from tests import hitpath
from tests.factories import AgentFactory, UserFactory

hitpath.install()  # before any test module imports Client

ON_POSTGRES = settings.IS_POSTGRES
ON_REDIS = bool(settings.REDIS_URL)


def pytest_collection_modifyitems(config, items):
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL=postgres://...")
    skip_redis = pytest.mark.skip(reason="needs Redis: set REDIS_URL=redis://...")
    for item in items:
        if "postgres" in item.keywords and not ON_POSTGRES:
            item.add_marker(skip_pg)
        if "redis" in item.keywords and not ON_REDIS:
            item.add_marker(skip_redis)


@pytest.fixture(autouse=True)
def _clear_cache():
    """Every test starts on an empty cache (the real one: Redis when REDIS_URL is set)."""
    cache.clear()
    response_cache.clear_near_copies()
    yield
    cache.clear()
    response_cache.clear_near_copies()


@pytest.fixture(params=[pytest.param("redis", marks=pytest.mark.redis), "file"])
def cache_backend(request, settings, tmp_path):
    """The real Redis the settings give, or a file cache of this test's own."""
    if request.param == "redis":
        assert isinstance(caches["default"], ResilientRedisCache)
    elif settings.REDIS_URL:
        # The embedded-default run (SQLite + file cache) covers the file cache; the Redis run
        # spends its time on Redis (keeps each `make test` within CI's budget).
        pytest.skip("file cache: covered by the embedded-default run")
    else:
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                "LOCATION": str(tmp_path / "cache"),
                "KEY_PREFIX": settings.CACHE_KEY_PREFIX,
                "TIMEOUT": settings.CACHE_TTL,
            }
        }
    return request.param


@pytest.fixture
def user(db):
    return UserFactory(username="alice")


@pytest.fixture
def other_user(db):
    return UserFactory(username="bob")


@pytest.fixture
def staff_user(db):
    return UserFactory(username="staff", is_staff=True, is_superuser=True)


@pytest.fixture
def agent(db):
    return AgentFactory(name="Translator Pro", tagline="Translates documents between languages")


@pytest.fixture
def vendor():
    return connection.vendor
