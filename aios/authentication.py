"""DRF's token authentication without a query per request.

Each process remembers which user a token digest belonged to, with the version of that
user's namespace (`aios.response_cache.user_ns`) it saw. The namespace moves whenever the
user, their password or their token changes, or they sign out (`aios.apps`), and versions live
in the shared cache (kept exact in the near copy), so a remembered token is used only while
nothing about its credentials changed anywhere: a revoked token or a deactivated user is
refused on the next request, whichever process or instance answers.

A remembered user is rebuilt for each request from its stored field values, never shared
between requests. Without the shared cache (down, or its circuit breaker open) every request
asks the database, as DRF does.
"""

import hashlib
import threading
import time

from django.db import router
from drf_spectacular.authentication import TokenScheme
from rest_framework.authentication import TokenAuthentication

from . import response_cache

MAX_REMEMBERED = 20_000  # tokens per process; about 1 KB each
# A version bumped less than this before the lookup began may belong to a change the lookup
# did not see (clocks of other instances may be a little off): such a user is not remembered.
CLOCK_MARGIN = 1.0

_remembered: dict[str, tuple[int, int, tuple, tuple]] = {}
_lock = threading.Lock()


def forget_all() -> None:
    with _lock:
        _remembered.clear()


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _values(instance) -> tuple:
    return tuple(getattr(instance, field.attname) for field in instance._meta.concrete_fields)


def _rebuild(model, values: tuple):
    names = [field.attname for field in model._meta.concrete_fields]
    return model.from_db(router.db_for_read(model), names, values)


class CachedTokenAuthentication(TokenAuthentication):
    """`Authorization: Token <key>`, as DRF's TokenAuthentication (same errors, same
    results), remembered per process while the user's credentials do not change."""

    def authenticate_credentials(self, key):
        digest = _digest(key)
        known = _remembered.get(digest)
        if known is not None:
            user_id, version, user_values, token_values = known
            plain, _ = response_cache.versions([response_cache.user_ns(user_id)])
            if plain.get(response_cache.user_ns(user_id)) == version:
                token = _rebuild(self.get_model(), token_values)
                token.user = _rebuild(token._meta.get_field("user").related_model, user_values)
                return token.user, token
        started = time.time()
        user, token = super().authenticate_credentials(key)
        self._remember(digest, user, token, started)
        return user, token

    @staticmethod
    def _remember(digest: str, user, token, started: float) -> None:
        namespace = response_cache.user_ns(user.pk)
        plain, _ = response_cache.versions([namespace])
        version = plain.get(namespace)
        if version is None or response_cache.version_time(version) > started - CLOCK_MARGIN:
            return  # no shared cache, or the credentials moved while we looked them up
        with _lock:
            if len(_remembered) >= MAX_REMEMBERED:
                _remembered.clear()
            _remembered[digest] = (user.pk, version, _values(user), _values(token))


class CachedTokenScheme(TokenScheme):
    """The OpenAPI schema's `tokenAuth`, as for DRF's class."""

    target_class = CachedTokenAuthentication
