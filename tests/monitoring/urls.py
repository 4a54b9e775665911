"""Views that make things happen for the monitoring tests: latency, 500s, slow queries."""

import os
import time

from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.urls import include, path


def sleep_view(request):
    time.sleep(int(request.GET.get("ms", 0)) / 1000)
    response = HttpResponse(status=int(request.GET.get("status", 200)))
    response["X-Worker-Pid"] = str(os.getpid())
    return response


def boom_view(request):
    raise RuntimeError("the test view failed on purpose")


def slow_query_sql(seconds: float):
    """SQL and parameters that take `seconds` in the database, on either backend."""
    if connection.vendor == "postgresql":
        return "SELECT pg_sleep(%s)", [seconds]
    connection.ensure_connection()
    # A slow function in SQLite itself, so the time is spent inside cursor.execute().
    connection.connection.create_function(
        "aios_test_sleep", 1, lambda s: time.sleep(s) or 1, deterministic=False
    )
    return "SELECT aios_test_sleep(%s)", [seconds]


def slow_query_view(request):
    sql, params = slow_query_sql(float(request.GET.get("s", "0.08")))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
    return JsonResponse({"ok": True})


urlpatterns = [
    path("_test/sleep", sleep_view, name="test-sleep"),
    path("_test/boom", boom_view, name="test-boom"),
    path("_test/slow-query", slow_query_view, name="test-slow-query"),
    path("", include("aios.urls")),
]
