"""Database overload answers 503 + Retry-After; other errors are not disguised."""

import json
import os
import subprocess
import sys

import pytest
from django.db import OperationalError, connection, transaction
from django.test import RequestFactory

from aios.resilience import DatabaseOverloadMiddleware, overload_reason


def _middleware():
    return DatabaseOverloadMiddleware(lambda request: None)


def _wrapped(cause: Exception) -> OperationalError:
    exc = OperationalError(str(cause))
    exc.__cause__ = cause
    return exc


def test_pool_timeout_becomes_503_with_retry_after():
    from psycopg_pool import PoolTimeout

    request = RequestFactory().get("/api/v1/marketplace/agents/")
    response = _middleware().process_exception(request, _wrapped(PoolTimeout("no connection")))
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert json.loads(response.content)["code"] == "pool_timeout"


def test_other_database_errors_are_left_alone():
    request = RequestFactory().get("/")
    assert _middleware().process_exception(request, OperationalError("disk full")) is None
    assert _middleware().process_exception(request, ValueError("bug")) is None


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_query_past_the_statement_timeout_is_recognised_as_overload():
    with (
        pytest.raises(OperationalError) as caught,
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("SET LOCAL statement_timeout = 50")
        cursor.execute("SELECT pg_sleep(2)")
    assert overload_reason(caught.value) == "statement_timeout"


@pytest.mark.postgres
def test_served_requests_carry_a_statement_timeout_below_the_request_timeout(settings):
    code = (
        "import django; django.setup(); from django.db import connection;"
        "c = connection.cursor(); c.execute('SHOW statement_timeout'); print(c.fetchone()[0])"
    )
    db = settings.DATABASES["default"]
    url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/postgres"
    env = {**os.environ, "AIOS_SERVING": "1", "REQUEST_TIMEOUT": "7", "DATABASE_URL": url}
    env.pop("PYTEST_CURRENT_TEST", None)
    served = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert served == "6500ms"
    # Management commands (migrate, seed_demo) are not cut short.
    env["AIOS_SERVING"] = "0"
    unserved = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert unserved == "0"
