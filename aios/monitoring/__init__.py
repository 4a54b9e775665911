"""Seeing the app run: Prometheus metrics, slow queries, pool monitor, rolling snapshot, health.

Two views of the same measurements:

* Prometheus (`/metrics`): cumulative counters and histograms, merged across gunicorn workers
  by prometheus_client's multiprocess mode (`PROMETHEUS_MULTIPROC_DIR`).
* The snapshot (`/api/v1/monitoring/`, `/staff/monitoring/`): percentiles over a rolling
  window, from per-second buckets every worker flushes once a second to shared storage
  (Redis when `REDIS_URL` or `REDIS_SENTINELS` is set, files in `MONITORING_DIR` otherwise);
  see `window.py`.

Other apps call `aios.monitoring.metrics.record_cache(namespace, hit)`.
"""
