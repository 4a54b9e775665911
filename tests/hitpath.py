"""Test clients that pass every request through the WSGI hit path first, as gunicorn does.

`aios.wsgi` puts `HitPath` in front of Django; Django's test client calls Django's handler
directly. Installed by tests/conftest.py for every `Client` (and pytest-django's `client`),
so every suite (security, authorization, hostile input, the invalidation matrix) runs with
the hit path on.
"""

from django.core.handlers.wsgi import WSGIRequest
from django.http import HttpResponse
from django.test import client as test_client

from aios.proxies import ClientAddress
from aios.response_cache import HitPath

_FALLTHROUGH = object()


class HitPathHandler:
    """Answers from the hit path when it can, else hands the environ to Django's handler."""

    def __init__(self, django_handler):
        self.django_handler = django_handler
        # As aios.wsgi: the client's address behind trusted proxies, then the hit path.
        self.hit_path = ClientAddress(HitPath(lambda environ, start_response: _FALLTHROUGH))
        self.hits = 0

    def __getattr__(self, name):
        return getattr(self.django_handler, name)

    def __call__(self, environ):
        captured = {}

        def start_response(status, headers):
            captured["status"], captured["headers"] = status, headers

        body = self.hit_path(environ, start_response)
        if body is _FALLTHROUGH:
            return self.django_handler(environ)
        self.hits += 1
        response = HttpResponse(b"".join(body), status=int(captured["status"].split()[0]))
        for header, value in captured["headers"]:
            response.headers[header] = value
        response.wsgi_request = WSGIRequest(environ)
        response.answered_by_hit_path = True
        return response


class Client(test_client.Client):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.handler = HitPathHandler(self.handler)


def install() -> None:
    """Every `Client` made from now on goes through the hit path."""
    import django.test

    django.test.Client = test_client.Client = Client
