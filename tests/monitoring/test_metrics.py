import logging

import pytest
from django.db import connection
from django.db.utils import ConnectionHandler
from django.test import Client

from aios.monitoring import metrics
from aios.monitoring.context import OUTSIDE_REQUEST
from tests.factories import CategoryFactory
from tests.monitoring.urls import slow_query_sql

pytestmark = pytest.mark.urls("tests.monitoring.urls")

LATENCY = "aios_http_request_duration_seconds"


def test_request_latency_is_observed_by_view_and_status_class(client, sample):
    before_ok = sample(f"{LATENCY}_count", view="test-sleep", status_class="2xx")
    before_404 = sample(f"{LATENCY}_count", view="test-sleep", status_class="4xx")
    slow_bucket = sample(f"{LATENCY}_bucket", view="test-sleep", status_class="2xx", le="0.025")

    client.get("/_test/sleep?ms=30")
    client.get("/_test/sleep?status=404")

    assert sample(f"{LATENCY}_count", view="test-sleep", status_class="2xx") == before_ok + 1
    assert sample(f"{LATENCY}_count", view="test-sleep", status_class="4xx") == before_404 + 1
    # 30 ms lands above the 25 ms edge: the bucket below it did not move.
    assert (
        sample(f"{LATENCY}_bucket", view="test-sleep", status_class="2xx", le="0.025")
        == slow_bucket
    )


def test_latency_buckets_resolve_5ms_to_2s():
    assert metrics.LATENCY_BUCKETS[0] == 0.005
    assert {0.2, 0.5, 2.0} <= set(metrics.LATENCY_BUCKETS)


def test_a_500_from_a_view_moves_the_5xx_and_exception_counters(sample):
    client = Client(raise_request_exception=False)
    errors = sample(f"{LATENCY}_count", view="test-boom", status_class="5xx")
    exceptions = sample("django_http_exceptions_total_by_type_total", type="RuntimeError")

    response = client.get("/_test/boom")

    assert response.status_code == 500
    assert sample(f"{LATENCY}_count", view="test-boom", status_class="5xx") == errors + 1
    assert (
        sample("django_http_exceptions_total_by_type_total", type="RuntimeError") == exceptions + 1
    )


def _slow_records(caplog):
    return [r for r in caplog.records if r.name == "aios.monitoring.slow_query"]


@pytest.mark.django_db
def test_a_slow_query_is_logged_once_with_sql_view_and_request_id_and_counted(
    client, sample, caplog
):
    before = sample("aios_db_slow_queries_total", view="test-slow-query")
    with caplog.at_level(logging.WARNING, logger="aios.monitoring.slow_query"):
        response = client.get("/_test/slow-query?s=0.08", HTTP_X_REQUEST_ID="req-slow-0001")

    assert response.status_code == 200
    assert sample("aios_db_slow_queries_total", view="test-slow-query") == before + 1
    [record] = _slow_records(caplog)
    assert record.request_id == "req-slow-0001"
    assert record.view == "test-slow-query"
    assert record.duration_ms >= 80
    assert "%s" in record.sql and "0.08" not in record.sql  # parameters elided


@pytest.mark.django_db
def test_fast_queries_are_not_reported_as_slow(client, sample, caplog, settings):
    settings.SLOW_QUERY_MS = 500
    before = sample("aios_db_slow_queries_total", view="test-slow-query")
    with caplog.at_level(logging.WARNING, logger="aios.monitoring.slow_query"):
        client.get("/_test/slow-query?s=0.06")
    assert sample("aios_db_slow_queries_total", view="test-slow-query") == before
    assert _slow_records(caplog) == []


@pytest.mark.django_db
def test_a_slow_query_outside_a_request_is_labelled_as_such(sample, caplog, settings):
    settings.SLOW_QUERY_MS = 20
    before = sample("aios_db_slow_queries_total", view=OUTSIDE_REQUEST)
    sql, params = slow_query_sql(0.03)
    with (
        caplog.at_level(logging.WARNING, logger="aios.monitoring.slow_query"),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, params)
    assert sample("aios_db_slow_queries_total", view=OUTSIDE_REQUEST) == before + 1
    [record] = _slow_records(caplog)
    assert record.view == OUTSIDE_REQUEST and record.request_id == "-"


@pytest.mark.django_db
def test_queries_feed_django_prometheus_database_metrics(sample, vendor):
    before = sample("django_db_execute_total", alias="default", vendor=vendor)
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    assert sample("django_db_execute_total", alias="default", vendor=vendor) == before + 1


@pytest.mark.django_db
def test_model_saves_are_counted(sample):
    inserts = sample("django_model_inserts_total", model="marketplace.category")
    updates = sample("django_model_updates_total", model="marketplace.category")
    category = CategoryFactory()
    category.save()
    assert sample("django_model_inserts_total", model="marketplace.category") == inserts + 1
    assert sample("django_model_updates_total", model="marketplace.category") == updates + 1


def test_record_cache_counts_hits_and_misses_per_namespace(sample):
    hits = sample("aios_cache_requests_total", namespace="lists", result="hit")
    misses = sample("aios_cache_requests_total", namespace="lists", result="miss")
    other = sample("aios_cache_requests_total", namespace="agent", result="hit")

    metrics.record_cache("lists", hit=True)
    metrics.record_cache("lists", hit=True)
    metrics.record_cache("lists", hit=False)

    assert sample("aios_cache_requests_total", namespace="lists", result="hit") == hits + 2
    assert sample("aios_cache_requests_total", namespace="lists", result="miss") == misses + 1
    assert sample("aios_cache_requests_total", namespace="agent", result="hit") == other


def test_open_connections_gauge_follows_connect_and_close(sample, tmp_path, django_db_blocker):
    # A database of its own: the test database's connection stays open for the whole run.
    engine = "aios.monitoring.db.backends.sqlite3"
    handler = ConnectionHandler(
        {
            "default": {"ENGINE": engine, "NAME": tmp_path / "default.db"},
            "extra": {"ENGINE": engine, "NAME": tmp_path / "extra.db"},
        }
    )
    extra = handler["extra"]
    with django_db_blocker.unblock():
        extra.ensure_connection()
        assert sample("aios_db_connections_open", alias="extra") == 1
        extra.close()
    assert sample("aios_db_connections_open", alias="extra") == 0


def test_metrics_endpoint_serves_the_exposition_format(client):
    client.get("/_test/sleep")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    body = response.content.decode()
    assert 'aios_http_request_duration_seconds_bucket{le="0.005",status_class="2xx"' in body
    assert "django_http_requests_latency_seconds_by_view_method" in body
