"""aios.urls plus /faults/sleep/<ms>/: one `pg_sleep` on a pooled connection (tests only)."""

import os

from django.db import connection
from django.http import JsonResponse
from django.urls import path

from aios.urls import urlpatterns as app_urlpatterns


def sleep(request, ms):
    with connection.cursor() as cursor:
        # The worker's pid in pg_stat_activity tells the tests which worker holds this query.
        cursor.execute(
            "SELECT set_config('application_name', %s, false)", [f"gunicorn-{os.getpid()}"]
        )
        cursor.execute("SELECT pg_sleep(%s)", [ms / 1000])
    return JsonResponse({"slept_ms": ms, "pid": os.getpid()})


urlpatterns = [path("faults/sleep/<int:ms>/", sleep, name="fault-sleep"), *app_urlpatterns]
