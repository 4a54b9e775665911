"""A django-redis cache that treats an unreachable or slow Redis as an empty cache.

Every operation goes through a per-process circuit breaker. A connection error or a socket
timeout (settings keep both short) turns into a miss (`get` returns the default, `get_many`
an empty dict) or a no-op (`set`, `add`, `delete` answer False), never an exception; only
`incr` / `decr` raise `CacheUnavailable`, a `ValueError` like the "no such key" they already
raise, so callers that ignore a missing key keep working. The failure opens the breaker:
for `CIRCUIT_BREAKER_SECONDS` no operation touches Redis, so a dead Redis costs one timeout
per interval rather than one per request. Then a single caller probes; its success closes
the breaker and caching resumes by itself.

Failures are logged once per `FAILURE_LOG_INTERVAL` with the count since the last line, and
counted in `aios_cache_backend_errors_total` (skipped operations in
`aios_cache_backend_skipped_total`).

DRF's throttles keep their history in this cache, so while Redis is down they let requests
through (fail open) instead of failing them.
"""

import contextlib
import functools
import logging
import socket
import threading
import time

from django_redis.cache import RedisCache
from django_redis.exceptions import ConnectionInterrupted
from prometheus_client import Counter
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# What an unreachable, slow or failing Redis raises through django-redis. ValueError (a
# missing key for incr) and programming errors are not among them and propagate.
UNAVAILABLE_ERRORS = (ConnectionInterrupted, RedisError, socket.timeout, OSError)

DEFAULT_BREAKER_SECONDS = 5.0
DEFAULT_LOG_INTERVAL = 60.0

backend_errors = Counter(
    "aios_cache_backend_errors_total",
    "Cache operations that failed because Redis was unreachable, slow or failing.",
    ["operation"],
)
backend_skipped = Counter(
    "aios_cache_backend_skipped_total",
    "Cache operations skipped (answered as a miss / no-op) while the circuit breaker was open.",
    ["operation"],
)


class CacheUnavailable(ValueError):
    """The cache could not be reached; raised by incr/decr where Django expects ValueError."""


class CircuitBreaker:
    """Open for `open_seconds` after a failure; one probe at a time while recovering.

    One per Redis location and process: Django builds a cache object per thread, and they
    must all see the same health (this is the process's view of Redis, not shared data).
    """

    def __init__(self, name: str, *, open_seconds: float, log_interval: float):
        self.name = name
        self.open_seconds = open_seconds
        self.log_interval = log_interval
        self._lock = threading.Lock()
        self._open_until = 0.0
        self._down = False
        self._last_log = float("-inf")
        self._unlogged = 0
        self._reported_down = False  # a recovery is logged only after a logged failure

    @property
    def is_down(self) -> bool:
        return self._down

    def allow(self) -> bool:
        """Whether an operation may try Redis now."""
        if not self._down:
            return True
        now = time.monotonic()
        if now < self._open_until:
            return False
        with self._lock:
            if now < self._open_until:
                return False
            # Half-open: this caller probes; the others keep skipping until it reports.
            self._open_until = now + self.open_seconds
            return True

    def record_success(self) -> None:
        if not self._down:
            return
        with self._lock:
            if not self._down:
                return
            self._down = False
            self._open_until = 0.0
            report, self._reported_down = self._reported_down, False
            failed = self._unlogged
            if report:
                self._unlogged = 0
        if report:
            log.warning(
                "Cache %s reachable again; caching resumes (%d more failures since last report)",
                self.name,
                failed,
            )

    def record_failure(self, operation: str, exc: BaseException) -> None:
        backend_errors.labels(operation=operation).inc()
        now = time.monotonic()
        with self._lock:
            self._unlogged += 1
            self._down = True
            self._open_until = now + self.open_seconds
            report = now - self._last_log >= self.log_interval
            if report:
                self._last_log = now
                self._reported_down = True
                failed, self._unlogged = self._unlogged, 0
        if report:
            log.warning(
                "Cache %s unavailable (%d failures since last report, last: %s: %s); "
                "serving without it, next attempt in %.1f s",
                self.name,
                failed,
                type(exc).__name__,
                exc,
                self.open_seconds,
            )

    def record_skip(self, operation: str) -> None:
        backend_skipped.labels(operation=operation).inc()


_breakers: dict[str, CircuitBreaker] = {}
_breakers_lock = threading.Lock()


def breaker_for(location: str, *, open_seconds: float, log_interval: float) -> CircuitBreaker:
    with _breakers_lock:
        breaker = _breakers.get(location)
        if breaker is None:
            breaker = _breakers[location] = CircuitBreaker(
                location, open_seconds=open_seconds, log_interval=log_interval
            )
        return breaker


def reset_breakers() -> None:
    """Forget every breaker's state (tests, and after changing CACHES at run time)."""
    with _breakers_lock:
        _breakers.clear()


def _default(args, kwargs, position: int, name: str, fallback=None):
    if name in kwargs:
        return kwargs[name]
    return args[position] if len(args) > position else fallback


def _raise_unavailable(args, kwargs):
    raise CacheUnavailable("cache unavailable")


# What each operation answers when Redis cannot: the answer of an empty cache.
_FALLBACKS = {
    "get": lambda args, kwargs: _default(args, kwargs, 1, "default"),
    "get_many": lambda args, kwargs: {},
    "has_key": lambda args, kwargs: False,
    "set": lambda args, kwargs: False,
    "add": lambda args, kwargs: False,
    "touch": lambda args, kwargs: False,
    "delete": lambda args, kwargs: False,
    "set_many": lambda args, kwargs: list(_default(args, kwargs, 0, "data", {})),
    "delete_many": lambda args, kwargs: None,
    "delete_pattern": lambda args, kwargs: 0,
    "clear": lambda args, kwargs: False,
    "incr": _raise_unavailable,
    "decr": _raise_unavailable,
    "incr_version": _raise_unavailable,
    "ttl": lambda args, kwargs: None,
    "pttl": lambda args, kwargs: None,
    "expire": lambda args, kwargs: False,
    "pexpire": lambda args, kwargs: False,
    "persist": lambda args, kwargs: False,
    "keys": lambda args, kwargs: [],
    "iter_keys": lambda args, kwargs: iter(()),
}


def _guarded(name: str, fallback):
    parent = getattr(RedisCache, name)

    @functools.wraps(parent)
    def method(self, *args, **kwargs):
        breaker = self.breaker
        if not breaker.allow():
            breaker.record_skip(name)
            return fallback(args, kwargs)
        try:
            result = parent(self, *args, **kwargs)
        except UNAVAILABLE_ERRORS as exc:
            breaker.record_failure(name, exc)
            return fallback(args, kwargs)
        breaker.record_success()
        return result

    return method


class ResilientRedisCache(RedisCache):
    """django-redis behind a circuit breaker (see the module docstring).

    OPTIONS: `CIRCUIT_BREAKER_SECONDS` (default 5), `FAILURE_LOG_INTERVAL` (default 60),
    besides django-redis's own. Keep SOCKET_CONNECT_TIMEOUT / SOCKET_TIMEOUT short.
    """

    def __init__(self, server, params):
        super().__init__(server, params)
        options = params.get("OPTIONS", {})
        self.breaker = breaker_for(
            str(server),
            open_seconds=float(options.get("CIRCUIT_BREAKER_SECONDS", DEFAULT_BREAKER_SECONDS)),
            log_interval=float(options.get("FAILURE_LOG_INTERVAL", DEFAULT_LOG_INTERVAL)),
        )

    def is_available(self) -> bool:
        """False while the breaker is open: callers may skip work that needs the cache."""
        return not self.breaker.is_down

    def count_in_window(self, current: str, previous: str, *, timeout: int):
        """INCR `current` (expiring after `timeout`) and read `previous`, in one round trip:
        (current count, previous count), or None while Redis is unavailable."""
        if not self.breaker.allow():
            self.breaker.record_skip("count_in_window")
            return None
        key = self.make_and_validate_key(current)
        try:
            pipe = self.client.get_client(write=True).pipeline(transaction=False)
            pipe.incr(key)
            pipe.expire(key, timeout)
            pipe.get(self.make_and_validate_key(previous))
            mine, _, before = pipe.execute()
        except UNAVAILABLE_ERRORS as exc:
            self.breaker.record_failure("count_in_window", exc)
            return None
        self.breaker.record_success()
        return int(mine), int(before or 0)

    def close(self, **kwargs):
        # Django calls this after every request; it talks to nobody, so it proves nothing
        # about Redis's health either way.
        with contextlib.suppress(*UNAVAILABLE_ERRORS):
            super().close(**kwargs)


# BaseCache's get_or_set and the async variants run through these guarded methods.
for _name, _fallback in _FALLBACKS.items():
    setattr(ResilientRedisCache, _name, _guarded(_name, _fallback))
del _name, _fallback


def cache_is_available(cache) -> bool:
    """Whether `cache` can be used now; always True for backends without a breaker."""
    check = getattr(cache, "is_available", None)
    return check() if callable(check) else True
