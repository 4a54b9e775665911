"""psycopg pool monitor: pool size, connections in use, waiters, waits that failed.

`sample()` reads `pool.pop_stats()`: the gauges come from its instant measures and the
counters' increments since the previous call (pop resets them, so nothing else may pop).
It runs in each worker's reporter thread every `MONITORING_REPORT_INTERVAL` seconds (a
worker blocked on an exhausted pool still reports) and in the worker answering a scrape.
"""

import threading

from django.db import connections

from . import metrics

_lock = threading.Lock()
# Last measures per alias, for the worker state behind the snapshot.
_last: dict[str, dict[str, int]] = {}


def _pool_of(alias: str):
    # Only a pool Django already built: `connection.pool` would build one from the settings of
    # the moment (in tests, before the test database is named) for every later connection.
    pools = getattr(connections[alias], "_connection_pools", None) or {}
    pool = pools.get(alias)
    if pool is None or pool.closed:
        return None
    return pool


def sample(pool, alias: str = "default") -> dict[str, int]:
    """Export one pool's stats; return its measures."""
    with _lock:
        stats = pool.pop_stats()
        size, available = stats.get("pool_size", 0), stats.get("pool_available", 0)
        metrics.pool_size.labels(alias=alias).set(size)
        metrics.pool_max_size.labels(alias=alias).set(stats.get("pool_max", 0))
        metrics.pool_available.labels(alias=alias).set(available)
        metrics.pool_in_use.labels(alias=alias).set(size - available)
        metrics.pool_waiting.labels(alias=alias).set(stats.get("requests_waiting", 0))
        metrics.pool_requests.labels(alias=alias).inc(stats.get("requests_num", 0))
        metrics.pool_queued.labels(alias=alias).inc(stats.get("requests_queued", 0))
        metrics.pool_wait_errors.labels(alias=alias).inc(stats.get("requests_errors", 0))
        metrics.pool_wait_seconds.labels(alias=alias).inc(stats.get("requests_wait_ms", 0) / 1000)
        metrics.pool_connections_lost.labels(alias=alias).inc(stats.get("connections_lost", 0))
        measures = {
            "size": size,
            "max": stats.get("pool_max", 0),
            "in_use": size - available,
            "waiting": stats.get("requests_waiting", 0),
        }
        _last[alias] = measures
        return measures


def sample_all() -> dict[str, dict[str, int]]:
    measured = {}
    for alias in connections:
        pool = _pool_of(alias)
        if pool is not None:
            measured[alias] = sample(pool, alias)
    return measured
