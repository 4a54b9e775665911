"""Query timing and the slow-query profiler, installed on every database connection.

The wrapper goes in through `connection_created`, not per request, so it also sees queries
run outside views (management commands, migrations, threads); those carry the view label
`<outside request>`. It is inserted first in `execute_wrappers` so that a
`with connection.execute_wrapper(...)` block open at connect time still pops its own
wrapper, not this one.
"""

import logging
import threading
import time

from django.conf import settings
from django.db.backends.signals import connection_created
from django_prometheus.models import model_inserts, model_updates

from . import metrics
from .context import request_id_var, view_var

log = logging.getLogger("aios.monitoring.slow_query")

MAX_SQL_CHARS = 4000


def time_query(execute, sql, params, many, context):
    start = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        seconds = time.perf_counter() - start
        metrics.observe_query(seconds=seconds)
        if seconds * 1000 >= settings.SLOW_QUERY_MS:
            _report_slow(sql, seconds, context)


def _report_slow(sql, seconds, context):
    view = view_var.get()
    metrics.count_slow_query(view=view)
    # `sql` is the statement with placeholders: parameters are never logged.
    text = sql if isinstance(sql, str) else str(sql)
    log.warning(
        "slow query: %.1f ms in %s",
        seconds * 1000,
        view,
        extra={
            "duration_ms": round(seconds * 1000, 2),
            "sql": text[:MAX_SQL_CHARS],
            "db_alias": context["connection"].alias,
            "view": view,
            "request_id": request_id_var.get(),
        },
    )


def install(connection) -> None:
    if time_query not in connection.execute_wrappers:
        connection.execute_wrappers.insert(0, time_query)


def _on_connection_created(sender, connection, **kwargs):
    install(connection)


def connect_signals() -> None:
    connection_created.connect(_on_connection_created, dispatch_uid="aios-monitoring-queries")


# Connections this process's threads hold open right now, by alias; read by the reporter.
_open_lock = threading.Lock()
_open: dict[str, int] = {}


def open_connections() -> dict[str, int]:
    with _open_lock:
        return dict(_open)


def _count_open(alias: str, delta: int) -> None:
    with _open_lock:
        _open[alias] = _open.get(alias, 0) + delta
    metrics.db_connections_open.labels(alias=alias).inc(delta)


class ConnectionCountingMixin:
    """Counts connections opened and closed (taken from and returned to the pool)."""

    def get_new_connection(self, conn_params):
        connection = super().get_new_connection(conn_params)
        _count_open(self.alias, 1)
        return connection

    def _close(self):
        was_open = self.connection is not None
        try:
            return super()._close()
        finally:
            if was_open:
                _count_open(self.alias, -1)


# django-prometheus's insert/update counters, fed by post_save rather than a mixin on every
# model; update() and bulk_create() send no signal and are not counted. Deletes are not
# counted: a post_delete receiver for every model would turn off Django's fast delete.
def count_model_save(sender, created, raw=False, **kwargs):
    if not raw:
        (model_inserts if created else model_updates).labels(sender._meta.label_lower).inc()
