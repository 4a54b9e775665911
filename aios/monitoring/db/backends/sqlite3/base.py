"""SQLite with django-prometheus's query metrics and an open-connection gauge."""

from django_prometheus.db.backends.sqlite3 import base

from aios.monitoring.dbinstrument import ConnectionCountingMixin


class DatabaseWrapper(ConnectionCountingMixin, base.DatabaseWrapper):
    pass
