import logging
import os
import time
import uuid
from datetime import datetime

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.core.cache import caches
from django.db import connections
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)
from rest_framework.exceptions import AuthenticationFailed

from aios import replicas

from . import access, pool, redisinfo, reporter, snapshot
from .middleware import exclude_from_window

log = logging.getLogger(__name__)

READYZ_CACHE_KEY = "monitoring:readyz"


@require_safe
@never_cache
@exclude_from_window
def metrics(request):
    if not access.may_scrape(request):
        return HttpResponse("Forbidden\n", status=403, content_type="text/plain")
    reporter.ensure_started()
    pool.sample_all()  # this worker's pool as of now; the others report every second
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    body = generate_latest(registry)
    scrape_time = CollectorRegistry(auto_describe=False)
    for collector in redisinfo.collectors():
        scrape_time.register(collector)
    body += generate_latest(scrape_time)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)


@require_safe
@never_cache
@exclude_from_window
def healthz(request):
    """The process answers; touches neither the database nor the cache."""
    return JsonResponse({"status": "ok"})


def _timed(check) -> dict:
    start = time.perf_counter()
    try:
        check()
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__, "ms": _ms_since(start)}
    return {"ok": True, "ms": _ms_since(start)}


def _ms_since(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)


def _check_database(alias: str):
    def check():
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()

    return check


def _check_cache():
    cache = caches["default"]
    token = uuid.uuid4().hex
    cache.set(READYZ_CACHE_KEY, token, timeout=10)
    # Some cache setups swallow connection errors and return None: the round trip must match.
    if cache.get(READYZ_CACHE_KEY) != token:
        raise ConnectionError("cache did not return the value just stored")


@require_safe
@never_cache
@exclude_from_window
def readyz(request):
    """The primary database and the cache reachable, with timings; 503 when either is not.
    Replicas are listed as this process's checks see them, and never make it unready: without
    them reads go to the primary (aios.replicas)."""
    checks = {f"database:{replicas.PRIMARY}": _timed(_check_database(replicas.PRIMARY))}
    checks["cache"] = _timed(_check_cache)
    ready = all(check["ok"] for check in checks.values())
    body = {"status": "ready" if ready else "not ready", "checks": checks}
    if replicas.enabled():
        body["replicas"] = {
            alias: state.as_dict() for alias, state in replicas.health.states().items()
        }
    return JsonResponse(body, status=200 if ready else 503)


def _error(status: int, detail: str) -> JsonResponse:
    response = JsonResponse({"detail": detail}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="monitoring"'
    return response


@csrf_exempt  # read-only: any other method gets a JSON 405, not the CSRF page
@never_cache
@exclude_from_window
def monitoring_api(request):
    if request.method not in {"GET", "HEAD"}:
        response = _error(405, f'Method "{request.method}" not allowed.')
        response["Allow"] = "GET, HEAD"
        return response
    token = access.bearer_token(request)
    if token is not None:
        if not access.token_matches(token, settings.MONITORING_TOKEN):
            return _error(401, "Invalid monitoring token.")
    else:
        # The API's token (a staff user's, like every other /api/v1/ route), else the session.
        try:
            user = access.api_token_user(request) or request.user
        except AuthenticationFailed as exc:
            return _error(401, str(exc.detail))
        if not user.is_authenticated:
            return _error(401, "Authentication credentials were not provided.")
        if not user.is_staff:
            return _error(403, "Staff only.")
    try:
        data = snapshot.compute()
    except Exception:
        log.warning("monitoring snapshot unavailable", exc_info=True)
        return _error(503, "Monitoring storage unavailable.")
    return JsonResponse(data)


SPARK_WIDTH, SPARK_HEIGHT = 240, 48


def sparkline(values: list[float | None], *, ceiling: float | None = None) -> dict:
    """SVG polyline points for a series; gaps (no data) break the line."""
    known = [v for v in values if v is not None]
    top = ceiling if ceiling is not None else max(known, default=0) or 1
    step = SPARK_WIDTH / max(1, len(values) - 1)
    segments, current = [], []
    for i, value in enumerate(values):
        if value is None:
            if current:
                segments.append(current)
            current = []
            continue
        y = SPARK_HEIGHT - 2 - (min(value, top) / top) * (SPARK_HEIGHT - 4)
        current.append(f"{i * step:.1f},{y:.1f}")
    if current:
        segments.append(current)
    return {
        "segments": [" ".join(points) for points in segments],
        "max": round(max(known), 2) if known else None,
        "last": known[-1] if known else None,
    }


@never_cache
@staff_member_required
@exclude_from_window
def staff_page(request):
    try:
        data = snapshot.compute()
    except Exception:
        log.warning("monitoring snapshot unavailable", exc_info=True)
        return HttpResponse(
            "Monitoring storage unavailable.", status=503, content_type="text/plain"
        )
    series = data["series"]
    charts = [
        ("Requests per second", "", sparkline([s["requests_per_second"] for s in series])),
        ("Response time p95", "ms", sparkline([s["api_response_p95"] for s in series])),
        ("Query time p95", "ms", sparkline([s["db_query_p95"] for s in series])),
        ("Error rate", "", sparkline([s["error_rate"] for s in series])),
        ("Cache hit rate", "", sparkline([s["cache_hit_rate"] for s in series], ceiling=1.0)),
    ]
    return render(
        request,
        "monitoring/staff.html",
        {
            "snapshot": data,
            "generated": datetime.fromisoformat(data["timestamp"]),
            "m": data["metrics"],
            "percent": {
                key: None if data["metrics"][key] is None else round(data["metrics"][key] * 100, 2)
                for key in ("error_rate", "cache_hit_rate")
            },
            "charts": charts,
            "width": SPARK_WIDTH,
            "height": SPARK_HEIGHT,
            "slice_seconds": data["window_seconds"] // max(1, len(series)),
        },
    )
