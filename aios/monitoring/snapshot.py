"""The monitoring snapshot: figures over the rolling window, across every worker.

Latencies are in milliseconds (the upper edge of a window bucket: at most 8 % high),
rates are fractions (0.0 .. 1.0), `cpu_usage_percent` is the workers' CPU time over the
window as a share of this host's CPUs, `memory_usage_mb` the live workers' resident memory
summed, `active_connections` the database connections they hold right now. A figure with
nothing measured in the window is null, never a made-up zero.
"""

import math
import os
import time
from collections import Counter
from datetime import UTC, datetime

from django.conf import settings

from . import window


def _percentile_ms(buckets: Counter, prefix: str, total: int, q: float) -> float | None:
    if not total:
        return None
    rank = max(1, math.ceil(total * q - 1e-9))  # nearest rank
    seen = 0
    for index in range(window.MAX_BUCKET + 1):
        seen += buckets.get(f"{prefix}{index}", 0)
        if seen >= rank:
            return round(window.bucket_upper_seconds(index) * 1000, 2)
    return None


def _ratio(part: int, total: int) -> float | None:
    return round(part / total, 4) if total else None


def _figures(merged: Counter) -> dict:
    requests, queries = merged["n"], merged["q"]
    lookups = merged["h"] + merged["m"]
    return {
        "api_response_p50": _percentile_ms(merged, "r", requests, 0.50),
        "api_response_p95": _percentile_ms(merged, "r", requests, 0.95),
        "api_response_p99": _percentile_ms(merged, "r", requests, 0.99),
        "error_rate": _ratio(merged["e"], requests),
        "request_count": requests,
        "db_query_p50": _percentile_ms(merged, "d", queries, 0.50),
        "db_query_p95": _percentile_ms(merged, "d", queries, 0.95),
        "db_query_p99": _percentile_ms(merged, "d", queries, 0.99),
        "db_query_count": queries,
        "slow_query_count": merged["s"],
        "cache_hit_rate": _ratio(merged["h"], lookups),
        "cache_lookup_count": lookups,
        # Copies served while the counters they show had moved: how far behind they were
        # at most (COUNTER_STALENESS bounds it).
        "counter_lag_served_count": merged["lc"],
        "counter_lag_p50_ms": _percentile_ms(merged, "g", merged["lc"], 0.50),
        "counter_lag_max_ms": _percentile_ms(merged, "g", merged["lc"], 1.0),
        "counter_staleness_seconds": settings.COUNTER_STALENESS,
        # The edge cache's purges (EDGE_PURGE_URLS): requests sent, failed (edge down or
        # refusing), keys given up, and the time from a write to the edge confirming it.
        "edge_purge_count": merged["pk"],
        "edge_purge_failures": merged["pf"],
        "edge_purge_dropped_keys": merged["px"],
        "edge_purge_delay_p95_ms": _percentile_ms(merged, "pd", merged["pn"], 0.95),
        "edge_purge_delay_max_ms": _percentile_ms(merged, "pd", merged["pn"], 1.0),
    }


def compute(*, window_seconds: int | None = None, slices: int = 30, now: float | None = None):
    window_seconds = window_seconds or settings.MONITORING_WINDOW_SECONDS
    now = time.time() if now is None else now
    live_for = max(5.0, 3 * settings.MONITORING_REPORT_INTERVAL)
    try:
        buckets, states = window.read(window_seconds, now=now, live_for=live_for)
        available = True
    except window.WindowUnavailable:
        # Redis is down: the figures are unknown (null), not zero, and the view still answers.
        buckets, states, available = {}, [], False
    merged = Counter()
    for fields in buckets.values():
        merged.update(fields)

    figures = _figures(merged)
    last = int(now)
    covered = last - min(buckets) + 1 if buckets else 0
    cpu_percent = None
    if covered and merged["cpu"]:
        cpus = os.cpu_count() or 1
        cpu_percent = round(merged["cpu"] / 1_000_000 / covered / cpus * 100, 2)
    figures.update(
        {
            "active_connections": sum(s["db_connections"] for s in states) if states else None,
            "memory_usage_mb": round(sum(s["rss_bytes"] for s in states) / 2**20, 1)
            if states
            else None,
            "cpu_usage_percent": cpu_percent,
            "requests_per_second": round(merged["n"] / covered, 3) if covered else None,
        }
    )
    return {
        "timestamp": datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds"),
        "window_seconds": window_seconds,
        "available": available,
        "workers": len(states),
        "pool": {
            "size": sum(s["pool_size"] for s in states),
            "in_use": sum(s["pool_in_use"] for s in states),
            "waiting": sum(s["pool_waiting"] for s in states),
        },
        "metrics": figures,
        "series": _series(buckets, last - window_seconds + 1, window_seconds, slices),
    }


def _series(buckets: dict, first: int, window_seconds: int, slices: int) -> list[dict]:
    width = max(1, window_seconds // slices)
    series = []
    for start in range(first, first + window_seconds, width):
        merged = Counter()
        for second in range(start, min(start + width, first + window_seconds)):
            if second in buckets:
                merged.update(buckets[second])
        requests, lookups = merged["n"], merged["h"] + merged["m"]
        series.append(
            {
                "start": datetime.fromtimestamp(start, UTC).isoformat(timespec="seconds"),
                "requests_per_second": round(requests / width, 3),
                "api_response_p95": _percentile_ms(merged, "r", requests, 0.95),
                "db_query_p95": _percentile_ms(merged, "d", merged["q"], 0.95),
                "error_rate": _ratio(merged["e"], requests),
                "cache_hit_rate": _ratio(merged["h"], lookups),
            }
        )
    return series
