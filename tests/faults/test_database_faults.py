"""Database faults under the real server: killed connections, an exhausted pool and a runaway
query each get a bounded, honest answer, and the app recovers without a restart."""

import threading
import time

import pytest
import requests
from django.db import connection

from .conftest import REQUEST_TIMEOUT, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


def _get(server, path, **kwargs):
    started = time.monotonic()
    response = requests.get(server.url + path, timeout=REQUEST_TIMEOUT, **kwargs)
    return response, time.monotonic() - started


def _app_backends() -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name LIKE 'gunicorn-%%'"
        )
        return [pid for (pid,) in cursor.fetchall()]


def _terminate(pids) -> int:
    with connection.cursor() as cursor:
        killed = 0
        for pid in pids:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
            killed += cursor.fetchone()[0] is True
        return killed


def test_killed_database_connections_are_replaced_without_a_restart(app_server, seeded):
    server = app_server(API_WORKERS="2", API_THREADS="2", DATABASE_POOL_SIZE="2")
    pages = ["/faults/sleep/0/", f"/agents/{seeded.agent.slug}/", "/api/v1/me/installations/"]
    headers = {"Authorization": f"Token {seeded.tokens['owner']}"}
    for _ in range(6):  # every worker opens its pool
        for path in pages:
            assert _get(server, path, headers=headers)[0].status_code == 200
    workers = server.worker_pids()
    pids = _app_backends()
    assert pids, "the server holds no database connection to kill"
    assert _terminate(pids) == len(pids)
    wait_for(lambda: not set(pids) & set(_app_backends()), timeout=10, what="backends to exit")

    answers = []
    for _ in range(10):
        for path in pages:
            response, elapsed = _get(server, path, headers=headers)
            answers.append((path, response.status_code, round(elapsed, 2)))
    assert all(status == 200 for _, status, _ in answers), answers
    assert max(elapsed for *_, elapsed in answers) < 5, answers  # nobody waited on a dead socket
    assert server.worker_pids() == workers  # recovered in place, no worker restarted


def test_an_exhausted_pool_answers_503_within_the_pool_timeout_and_recovers(app_server, seeded):
    server = app_server(
        API_WORKERS="1",
        API_THREADS="4",
        DATABASE_POOL_SIZE="1",
        DATABASE_MAX_OVERFLOW="0",
        DATABASE_POOL_TIMEOUT="1",
    )
    holder = {}

    def hold_the_only_connection():
        holder["response"], holder["elapsed"] = _get(server, "/faults/sleep/4000/")

    thread = threading.Thread(target=hold_the_only_connection)
    thread.start()
    wait_for(_busy_sleeper, timeout=5, what="the slow query to start")

    response, elapsed = _get(server, f"/agents/{seeded.agent.slug}/reviews/")
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    assert response.json()["code"] == "pool_timeout"
    assert 0.9 <= elapsed < 5, elapsed  # the pool timeout (1 s), not the worker timeout (35 s)

    api, _ = _get(server, "/api/v1/marketplace/categories/", params={"page_size": 2})
    assert api.status_code in (200, 503)  # may be served from the cache; never a 500

    thread.join(timeout=REQUEST_TIMEOUT)
    assert holder["response"].status_code == 200  # the holder itself was not disturbed
    response, elapsed = _get(server, f"/agents/{seeded.agent.slug}/reviews/")
    assert response.status_code == 200
    assert elapsed < 3  # served at once: nothing left queued behind the pool


def _busy_sleeper() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND query LIKE 'SELECT pg_sleep%%' AND state = 'active'"
        )
        return cursor.fetchone()[0] > 0


def test_a_runaway_query_is_cut_by_the_statement_timeout_and_answered_503(app_server, seeded):
    # REQUEST_TIMEOUT=2 gives statement_timeout = 1.5 s; the worker timeout is 7 s.
    server = app_server(API_WORKERS="1", API_THREADS="2", REQUEST_TIMEOUT="2")
    workers = server.worker_pids()
    response, elapsed = _get(server, "/faults/sleep/10000/")
    assert response.status_code == 503
    assert response.json()["code"] == "statement_timeout"
    assert int(response.headers["Retry-After"]) > 0
    assert 1.4 <= elapsed < 6, elapsed  # the statement timeout, well before the worker one
    assert not _busy_sleeper()  # cancelled in the database too, not only answered
    response, elapsed = _get(server, "/faults/sleep/0/")
    assert response.status_code == 200
    assert server.worker_pids() == workers  # the same worker, alive and serving
