import time
import uuid

from . import metrics, reporter
from .context import UNRESOLVED, request_id_var, sane_request_id, view_var


def exclude_from_window(view_func):
    """Keep a view's requests out of the snapshot (they still count in Prometheus)."""
    view_func.monitoring_exempt = True
    return view_func


def view_label(request) -> str:
    match = getattr(request, "resolver_match", None)
    return UNRESOLVED if match is None else match.view_name


class RequestMonitoringMiddleware:
    """Request id, latency by view and status class, the window's request counts.

    Sits second, right after PrometheusBeforeMiddleware, so the id is set before any other
    middleware logs and the timing covers the whole stack.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        reporter.ensure_started()
        request_id = sane_request_id(request.headers.get("X-Request-ID")) or uuid.uuid4().hex
        request.request_id = request_id
        # Cleared on request_finished, not here: Django logs 4xx/5xx responses after the
        # middleware chain returns, and those records should carry the id too.
        request_id_var.set(request_id)
        view_var.set(UNRESOLVED)
        start = time.perf_counter()
        response = self.get_response(request)
        seconds = time.perf_counter() - start
        match = getattr(request, "resolver_match", None)
        exempt = match is not None and getattr(match.func, "monitoring_exempt", False)
        metrics.observe_request(
            view=view_label(request),
            status=response.status_code,
            seconds=seconds,
            in_window=not exempt,
        )
        response["X-Request-ID"] = request_id
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        view_var.set(view_label(request))
