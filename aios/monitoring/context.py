"""Per-request context read by the log filter and the slow-query profiler."""

import contextvars
import logging
import re

OUTSIDE_REQUEST = "<outside request>"
UNRESOLVED = "<unresolved>"

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
view_var: contextvars.ContextVar[str] = contextvars.ContextVar("view", default=OUTSIDE_REQUEST)

# Accepted as given: what proxies and tracers send (UUIDs, hex, base64url, dotted ids).
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:+/=-]{8,128}")


def clear(**kwargs) -> None:
    """request_finished receiver: what follows a request is outside it."""
    request_id_var.set("-")
    view_var.set(OUTSIDE_REQUEST)


def sane_request_id(value: str | None) -> str | None:
    if value and _SANE_REQUEST_ID.fullmatch(value):
        return value
    return None


class RequestContextFilter(logging.Filter):
    """Adds `request_id` and `view` to every record (`-` and `<outside request>` outside one)."""

    def filter(self, record):
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        if not hasattr(record, "view"):
            record.view = view_var.get()
        return True
