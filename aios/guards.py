"""Requests refused before any view runs, each with one warning line and no traceback.

- A body over `DATA_UPLOAD_MAX_MEMORY_SIZE` (by its Content-Length) on an `/api/` path: the
  API's `413 {"detail": ...}`. Django would raise RequestDataTooBig wherever the body is first
  read and answer its HTML "Bad Request (400)", logged as an error with a traceback. Pages keep
  Django's 400 (the 400 page).
- A query string whose percent-escapes are not UTF-8 (`?q=%ff%fe`): the project's 400 handler
  (`handler400` in aios/urls.py), JSON under `/api/`, the 400 page elsewhere. Django would
  decode it to U+FFFD and serve it as if the client had typed that.
"""

import logging
from urllib.parse import unquote_to_bytes

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.http import JsonResponse
from django.urls import get_resolver, get_urlconf
from django.utils.encoding import escape_uri_path

API_PREFIX = "/api/"

# Django's own logger names for these cases, so log routing by name keeps working.
too_big_log = logging.getLogger("django.security.RequestDataTooBig")
malformed_log = logging.getLogger("django.security.MalformedQueryString")


class MalformedRequest(SuspiciousOperation):
    """The client's request is unusable as sent; the message is safe to show to the client."""


def declared_length(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def query_string_is_utf8(raw: bytes) -> bool:
    if raw.isascii() and b"%" not in raw:
        return True  # the common case: nothing to decode
    try:
        unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _logged(response):
    response._has_been_logged = True  # django.request would log the same 4xx a second time
    return response


def payload_too_large(request, *, length: int):
    """The API's 413, logged as one warning."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    too_big_log.warning(
        "Request body of %s bytes over the %s-byte limit: %s %s",
        length,
        limit,
        request.method,
        escape_uri_path(request.path),
        extra={"status_code": 413},
    )
    detail = f"Request body too large: at most {limit} bytes."
    return _logged(JsonResponse({"detail": detail}, status=413))


class RequestGuardMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith(API_PREFIX):
            length = declared_length(request)
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            if limit is not None and length > limit:
                return payload_too_large(request, length=length)
        raw = request.META.get("QUERY_STRING", "").encode("latin-1", "replace")  # WSGI's bytes
        if not query_string_is_utf8(raw):
            malformed_log.warning(
                "Query string is not UTF-8: %s %s",
                request.method,
                escape_uri_path(request.path),
                extra={"status_code": 400},
            )
            handler = get_resolver(get_urlconf()).resolve_error_handler(400)
            exception = MalformedRequest("The query string is not valid UTF-8.")
            return _logged(handler(request, exception))
        return self.get_response(request)
