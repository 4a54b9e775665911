import threading
import time

import pytest
from django.db import connection, connections

from aios.monitoring import pool as pool_monitor
from aios.monitoring import reporter, snapshot

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture
def tiny_pool():
    """A psycopg pool of one connection to the test database, built the way Django builds its."""
    from psycopg_pool import ConnectionPool

    params = {**connection.get_connection_params(), "autocommit": True}
    pool = ConnectionPool(kwargs=params, min_size=1, max_size=1, timeout=0.3, open=True)
    pool.wait()
    yield pool
    pool.close()


def _wait_in_thread(pool, timeout):
    outcome = {}

    def take():
        try:
            with pool.connection(timeout=timeout):
                outcome["got"] = True
        except Exception as exc:
            outcome["error"] = type(exc).__name__

    thread = threading.Thread(target=take)
    thread.start()
    return thread, outcome


def _eventually(predicate, seconds=3.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_a_pool_wait_and_a_timed_out_wait_move_the_pool_metrics(tiny_pool, sample):
    labels = {"alias": "tiny"}
    queued = sample("aios_db_pool_requests_queued_total", **labels)
    errors = sample("aios_db_pool_wait_errors_total", **labels)

    held = tiny_pool.getconn()
    thread, outcome = _wait_in_thread(tiny_pool, timeout=5)
    assert _eventually(lambda: pool_monitor.sample(tiny_pool, "tiny")["waiting"] == 1)
    assert sample("aios_db_pool_requests_waiting", **labels) == 1
    assert sample("aios_db_pool_in_use", **labels) == 1
    assert sample("aios_db_pool_size", **labels) == 1
    assert sample("aios_db_pool_max_size", **labels) == 1
    tiny_pool.putconn(held)  # the waiter gets it
    thread.join(5)
    assert outcome == {"got": True}

    held = tiny_pool.getconn()
    thread, outcome = _wait_in_thread(tiny_pool, timeout=0.2)
    thread.join(5)
    tiny_pool.putconn(held)
    assert outcome == {"error": "PoolTimeout"}

    pool_monitor.sample(tiny_pool, "tiny")
    assert sample("aios_db_pool_requests_waiting", **labels) == 0
    assert sample("aios_db_pool_requests_queued_total", **labels) == queued + 2
    assert sample("aios_db_pool_wait_errors_total", **labels) == errors + 1
    assert sample("aios_db_pool_wait_seconds_total", **labels) >= 0.2


def test_exhaustion_shows_within_seconds_without_a_scrape(
    tiny_pool, sample, monkeypatch, fresh_window
):
    # The worker's reporter thread samples "default"; here "default" is the tiny pool. The
    # reporter takes no pool argument, so its private look-up is the only seam.
    monkeypatch.setattr(pool_monitor, "_pool_of", lambda alias: tiny_pool)
    reporter.ensure_started()
    held = tiny_pool.getconn()
    try:
        thread, _ = _wait_in_thread(tiny_pool, timeout=4)
        assert _eventually(
            lambda: sample("aios_db_pool_requests_waiting", alias="default") == 1, seconds=3
        ), "the reporter thread did not export the waiter"
        assert _eventually(lambda: snapshot.compute()["pool"]["waiting"] == 1, seconds=3)
    finally:
        tiny_pool.putconn(held)
    thread.join(5)
    assert _eventually(
        lambda: sample("aios_db_pool_requests_waiting", alias="default") == 0, seconds=3
    )


def test_the_django_pool_is_what_the_monitor_reads(sample):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    measured = pool_monitor.sample_all()
    assert measured["default"]["in_use"] >= 1  # this test's connection
    assert sample("aios_db_pool_in_use", alias="default") == measured["default"]["in_use"]
    assert measured["default"]["max"] == connection.settings_dict["OPTIONS"]["pool"]["max_size"]


def test_the_monitor_never_builds_a_pool_itself(monkeypatch):
    wrapper = type(connections["default"])
    # Django keeps its pools in this private class attribute and offers no other view of them.
    monkeypatch.setattr(wrapper, "_connection_pools", {})
    assert pool_monitor.sample_all() == {}
    assert wrapper._connection_pools == {}  # nothing built behind Django's back
