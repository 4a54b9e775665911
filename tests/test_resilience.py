"""Database overload answers 503 + Retry-After; other errors are not disguised."""

import json

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
@pytest.mark.django_db
def test_connections_carry_a_statement_timeout_below_the_request_timeout(settings):
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        (value,) = cursor.fetchone()
    milliseconds = int(value.removesuffix("ms")) if value.endswith("ms") else int(value[:-1]) * 1000
    assert 0 < milliseconds < settings.REQUEST_TIMEOUT * 1000
