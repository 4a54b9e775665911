"""Turn database overload into a fast, honest 503 instead of a hung or crashed worker.

Two failures are expected under overload and say "try again shortly", not "bug":
- the connection pool had no free connection within DATABASE_POOL_TIMEOUT (PoolTimeout);
- a query ran past the statement timeout derived from REQUEST_TIMEOUT (QueryCanceled).
Both become 503 with Retry-After; every other database error still surfaces as a 500.
"""

import json
import logging

from django.db import OperationalError
from django.http import HttpResponse

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 2


def overload_reason(exc: BaseException) -> str | None:
    """'pool_timeout' or 'statement_timeout' when `exc` is database overload, else None."""
    if not isinstance(exc, OperationalError):
        return None
    cause = exc.__cause__ or exc
    try:
        from psycopg.errors import QueryCanceled
        from psycopg_pool import PoolTimeout
    except ImportError:  # SQLite-only installs
        return None
    if isinstance(cause, PoolTimeout):
        return "pool_timeout"
    if isinstance(cause, QueryCanceled):
        return "statement_timeout"
    return None


class DatabaseOverloadMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exc):
        reason = overload_reason(exc)
        if reason is None:
            return None
        log.warning("database overload (%s) on %s", reason, request.path)
        body = {"detail": "The service is busy. Please retry shortly.", "code": reason}
        response = HttpResponse(json.dumps(body), status=503, content_type="application/json")
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        response["Cache-Control"] = "no-store"
        return response
