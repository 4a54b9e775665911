"""PostgreSQL with django-prometheus's query metrics and an open-connection gauge.

django-prometheus passes its instrumented cursor class as `cursor_factory` in the
connection parameters, which Django also hands to psycopg's pool, so pooled connections
are instrumented too.
"""

from django_prometheus.db.backends.postgresql import base

from aios.monitoring.dbinstrument import ConnectionCountingMixin


class DatabaseWrapper(ConnectionCountingMixin, base.DatabaseWrapper):
    pass
