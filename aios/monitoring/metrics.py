"""Every Prometheus metric the app defines beyond django-prometheus's own, and the recorders.

Gauges name a multiprocess mode: under gunicorn each worker writes its own value to
`PROMETHEUS_MULTIPROC_DIR` and `/metrics` sums the live workers' values ("livesum"), so a
dead worker's connections stop counting once gunicorn's `child_exit` hook marks it dead.
Outside multiprocess mode (tests, `runserver`) the mode is ignored.
"""

from prometheus_client import Counter, Gauge, Histogram

from . import window

# Resolves 5 ms .. 2 s, with edges on the alert thresholds (200 ms, 500 ms).
LATENCY_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.5,
    0.75,
    1.0,
    1.5,
    2.0,
    5.0,
    float("inf"),
)

http_request_duration = Histogram(
    "aios_http_request_duration_seconds",
    "Time from the monitoring middleware receiving a request to it returning the response.",
    ["view", "status_class"],
    buckets=LATENCY_BUCKETS,
)
slow_queries = Counter(
    "aios_db_slow_queries_total",
    "Database queries slower than SLOW_QUERY_MS, by the view that ran them.",
    ["view"],
)
cache_requests = Counter(
    "aios_cache_requests_total",
    "Application cache look-ups by namespace and result (hit or miss).",
    ["namespace", "result"],
)
db_connections_open = Gauge(
    "aios_db_connections_open",
    "Database connections held by app threads (checked out of the pool on PostgreSQL).",
    ["alias"],
    multiprocess_mode="livesum",
)
pool_size = Gauge(
    "aios_db_pool_size",
    "Connections the psycopg pool holds open (idle or in use).",
    ["alias"],
    multiprocess_mode="livesum",
)
pool_max_size = Gauge(
    "aios_db_pool_max_size",
    "The pool's max_size: the connections it may open.",
    ["alias"],
    multiprocess_mode="livesum",
)
pool_available = Gauge(
    "aios_db_pool_available",
    "Idle connections in the pool, ready to be handed out.",
    ["alias"],
    multiprocess_mode="livesum",
)
pool_in_use = Gauge(
    "aios_db_pool_in_use",
    "Pool connections handed out to requests right now.",
    ["alias"],
    multiprocess_mode="livesum",
)
pool_waiting = Gauge(
    "aios_db_pool_requests_waiting",
    "Requests waiting for a pool connection right now (pool exhausted when above 0).",
    ["alias"],
    multiprocess_mode="livesum",
)
pool_requests = Counter(
    "aios_db_pool_requests_total",
    "Connections requested from the pool.",
    ["alias"],
)
pool_queued = Counter(
    "aios_db_pool_requests_queued_total",
    "Pool requests that had to wait because no connection was free.",
    ["alias"],
)
pool_wait_errors = Counter(
    "aios_db_pool_wait_errors_total",
    "Pool requests that timed out waiting (or were refused with too many waiters).",
    ["alias"],
)
pool_wait_seconds = Counter(
    "aios_db_pool_wait_seconds_total",
    "Time spent by requests waiting for a pool connection.",
    ["alias"],
)
pool_connections_lost = Counter(
    "aios_db_pool_connections_lost_total",
    "Pool connections found broken and discarded.",
    ["alias"],
)
replica_lag = Gauge(
    "aios_db_replica_lag_seconds",
    "Seconds of the primary's history a replica has not replayed, as each worker's last check "
    "saw it (-1: unknown); over DATABASE_REPLICA_MAX_LAG it is skipped.",
    ["alias"],
    multiprocess_mode="livemax",
)
replica_usable = Gauge(
    "aios_db_replica_usable",
    "1 while every worker sends reads to the replica (reachable, replaying, within the lag).",
    ["alias"],
    multiprocess_mode="livemin",
)
replica_retries = Counter(
    "aios_db_replica_retries_total",
    "Requests whose read failed on a replica and that were answered from the primary.",
    ["alias"],
)
worker_memory = Gauge(
    "aios_worker_resident_memory_bytes",
    "Resident memory of the app's worker processes.",
    multiprocess_mode="livesum",
)
worker_cpu = Counter(
    "aios_worker_cpu_seconds_total",
    "CPU time (user + system) used by the app's worker processes.",
)
window_flush_errors = Counter(
    "aios_monitoring_flush_errors_total",
    "Failed writes of the rolling-window buckets to shared storage (data for that second lost).",
)


def record_cache(namespace: str, hit: bool) -> None:
    """Count one application cache look-up; feeds `/metrics` and the snapshot's hit rate."""
    cache_requests.labels(namespace=namespace, result="hit" if hit else "miss").inc()
    window.recorder.add("h" if hit else "m")


counter_lag = Histogram(
    "aios_cache_counter_lag_seconds",
    "Age of cached copies served while the counters they show had moved (bounded by "
    "COUNTER_STALENESS).",
    buckets=(0.1, 0.5, 1, 2, 5, 10, 15, 20, 30, 45, 60, 120, float("inf")),
)


def record_counter_lag(seconds: float) -> None:
    """A copy whose counters moved was served; `seconds` bounds how far they lag."""
    counter_lag.observe(seconds)
    window.recorder.add("lc")
    window.recorder.add("lm", int(seconds * 1000))
    window.recorder.add(f"g{window.bucket_of(seconds)}")


def observe_request(*, view: str, status: int, seconds: float, in_window: bool = True) -> None:
    http_request_duration.labels(view=view, status_class=f"{status // 100}xx").observe(seconds)
    if in_window:
        window.recorder.observe_request(seconds, error=status >= 500)


def observe_query(*, seconds: float) -> None:
    window.recorder.observe_query(seconds)


def count_slow_query(*, view: str) -> None:
    slow_queries.labels(view=view).inc()
    window.recorder.add("s")


edge_purges = Counter(
    "aios_edge_purges_total",
    "PURGE requests sent to the edge cache (EDGE_PURGE_URLS), by result (ok or failed).",
    ["result"],
)
edge_purge_dropped = Counter(
    "aios_edge_purge_dropped_keys_total",
    "Keys given up after the edge failed to purge them for longer than it keeps a copy.",
)
edge_purge_delay = Histogram(
    "aios_edge_purge_delay_seconds",
    "Time from a write retiring a namespace to the edge confirming its purge.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 30, float("inf")),
)


def record_edge_purge(*, ok: bool, delay: float | None = None) -> None:
    """One PURGE request to an edge; `delay`: since the write asked for its oldest key."""
    edge_purges.labels(result="ok" if ok else "failed").inc()
    window.recorder.add("pk" if ok else "pf")
    if delay is not None:
        edge_purge_delay.observe(delay)
        window.recorder.add("pn")
        window.recorder.add(f"pd{window.bucket_of(delay)}")


def record_edge_purge_dropped(keys: int) -> None:
    edge_purge_dropped.inc(keys)
    window.recorder.add("px", keys)
