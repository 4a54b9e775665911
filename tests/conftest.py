import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection

from aios import response_cache
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
