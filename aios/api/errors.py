"""JSON errors for the whole API, including the paths no API view answers.

DRF's handler already renders every APIException (400, 401, 403, 404, 405, 409, 429 with
`Retry-After`) as `{"detail": ...}` or field errors. Django's own 400, 404 and 500 handlers
answer paths under /api/ with JSON too (`bad_request`, `not_found`, `server_error`, wired in
aios/urls.py) and leave the HTML pages to Django's defaults (templates/400.html ...).
A body over the upload limit is a 413 (aios.guards refuses it before any view; here in case a
view reads one anyway). `errors(...)` documents these shapes in the schema.
"""

import copy

from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import JsonResponse
from django.views import defaults
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, serializers, status
from rest_framework.views import exception_handler as drf_exception_handler

from aios import guards

API_PREFIX = guards.API_PREFIX


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "Conflicts with the current state of the resource."
    default_code = "conflict"


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()


class ValidationErrorSerializer(serializers.Serializer):
    """A 400: each invalid field (or `non_field_errors`) with its list of messages."""

    non_field_errors = serializers.ListField(child=serializers.CharField(), required=False)


_ERRORS = {
    400: OpenApiResponse(
        ValidationErrorSerializer, description="Invalid input: field name -> list of messages."
    ),
    401: OpenApiResponse(ErrorSerializer, description="Not signed in."),
    403: OpenApiResponse(ErrorSerializer, description="Not allowed (e.g. CSRF check failed)."),
    404: OpenApiResponse(ErrorSerializer, description="No such resource (for you)."),
    409: OpenApiResponse(ErrorSerializer, description="Conflicts with the current state."),
    429: OpenApiResponse(ErrorSerializer, description="Too many requests; see Retry-After."),
}


def errors(*codes: int) -> dict:
    """Schema responses for the given error status codes (429 always: every view throttles)."""
    return {code: _ERRORS[code] for code in sorted({*codes, 429})}


def exception_handler(exc, context):
    if isinstance(exc, RequestDataTooBig):
        request = context["request"]
        return guards.payload_too_large(request, length=guards.declared_length(request))
    if isinstance(exc, DjangoValidationError):
        # A model-level check that slipped past the serializer is still the client's input.
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        )
    return drf_exception_handler(exc, context)


# gunicorn answers a request line over limit_request_line (its default, 4094 bytes) with a 414
# before the app sees it. The longest legitimate query of every list fits well under it
# (tests/security/test_api_edges.py), so only a client's mistake meets it; the schema says so.
URI_TOO_LONG = {
    "description": "Request line over the server's 4094-byte limit, answered by gunicorn "
    "in HTML before the API sees it. Every legitimate query fits.",
    "content": {"text/html": {"schema": {"type": "string"}}},
}


def document_uri_too_long(result, generator, request, public):
    """drf-spectacular postprocessing hook: 414 on every GET that takes query parameters."""
    for path in result.get("paths", {}).values():
        operation = path.get("get")
        if operation and any(p.get("in") == "query" for p in operation.get("parameters", [])):
            operation.setdefault("responses", {})["414"] = copy.deepcopy(URI_TOO_LONG)
    return result


def _is_api(request) -> bool:
    return request.path.startswith(API_PREFIX)


def bad_request(request, exception=None):
    if _is_api(request):
        # Only this project's own refusals say why; other SuspiciousOperations stay vague.
        detail = str(exception) if isinstance(exception, guards.MalformedRequest) else None
        return JsonResponse({"detail": detail or "Bad request."}, status=400)
    return defaults.bad_request(request, exception)


def not_found(request, exception=None):
    if _is_api(request):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if _is_api(request):
        return JsonResponse({"detail": "Server error."}, status=500)
    return defaults.server_error(request)
