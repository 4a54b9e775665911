"""Brute-force throttling of sign-in (site login and API token), per account and per address.

Failed attempts are counted in the shared cache in fixed windows of LOGIN_THROTTLE_WINDOW
seconds: once an account reaches LOGIN_FAILURES_PER_ACCOUNT, or a client address reaches
LOGIN_FAILURES_PER_ADDRESS, further attempts are refused without checking the password until
the window ends. A success clears the account's count, never the address's (an attacker with
an account of their own could otherwise reset it between guesses). The per-account limit can
lock the owner out for one window: the price of stopping slow guessing spread over addresses.

If the cache is down, throttling is skipped rather than sign-in: availability first, and the
password hasher (Argon2) still makes each guess expensive.
"""

import contextlib
import hashlib
import ipaddress
import logging
import time

from django import forms
from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.http import HttpResponseRedirect
from rest_framework import exceptions
from rest_framework import throttling as drf_throttling

log = logging.getLogger(__name__)

KEY_PREFIX = "throttle:login"


def client_address(request) -> str:
    """The peer address; IPv6 clients by their /64, which one host usually owns whole."""
    raw = request.META.get("REMOTE_ADDR") or "unknown"
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return raw
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False).network_address) + "/64"
    return str(address)


def _digest(value: str) -> str:
    # Keys stay short and free of whatever characters a username or address may hold.
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _window() -> int:
    return settings.LOGIN_THROTTLE_WINDOW


def _counters(request, username: str | None, now: float) -> list[tuple[str, int]]:
    """(cache key, limit) for the account and the address, in the current window."""
    bucket = int(now // _window())
    address = _digest(client_address(request))
    counters = [(f"{KEY_PREFIX}:addr:{address}:{bucket}", settings.LOGIN_FAILURES_PER_ADDRESS)]
    if username:
        account = _digest(username.strip().casefold())
        limit = settings.LOGIN_FAILURES_PER_ACCOUNT
        counters.append((f"{KEY_PREFIX}:acct:{account}:{bucket}", limit))
    return counters


def retry_after(request, username: str | None) -> int:
    """Seconds until this account and address may try again; 0 when they may now."""
    now = time.time()
    counters = _counters(request, username, now)
    try:
        counts = cache.get_many([key for key, _ in counters])
    except Exception:  # a cache outage must not stop sign-in
        log.warning("login throttle skipped: cache unavailable", exc_info=True)
        return 0
    if any(counts.get(key, 0) >= limit for key, limit in counters):
        return max(1, int(_window() - now % _window()) + 1)
    return 0


def record_failure(request, username: str | None) -> None:
    """Count one failed attempt against the account and the address."""
    timeout = _window() + 60  # outlives its window a little; the bucket number retires it
    try:
        for key, _ in _counters(request, username, time.time()):
            cache.add(key, 0, timeout=timeout)
            try:
                cache.incr(key)
            except ValueError:  # expired between add and incr
                cache.set(key, 1, timeout=timeout)
    except Exception:
        log.warning("login throttle could not count a failure: cache unavailable", exc_info=True)


def record_success(request, username: str | None) -> None:
    """Clear the account's failures (the address keeps its count)."""
    try:
        cache.delete_many([key for key, _ in _counters(request, username, time.time())[1:]])
    except Exception:
        log.warning("login throttle could not clear a count: cache unavailable", exc_info=True)


def _wait_message(seconds: int) -> str:
    minutes = max(1, round(seconds / 60))
    unit = "minute" if minutes == 1 else "minutes"
    return f"Too many failed sign-in attempts. Please try again in {minutes} {unit}."


# --- Site: the login form and view --------------------------------------------------------


class ThrottledAuthenticationForm(AuthenticationForm):
    """Django's login form, refusing throttled attempts before the password is checked."""

    throttled_for = 0

    def clean(self):
        username = self.cleaned_data.get("username")
        self.throttled_for = retry_after(self.request, username)
        if self.throttled_for:
            raise forms.ValidationError(_wait_message(self.throttled_for), code="throttled")
        try:
            cleaned = super().clean()
        except forms.ValidationError as exc:
            if getattr(exc, "code", None) == "invalid_login":
                record_failure(self.request, username)
            raise
        record_success(self.request, username)
        return cleaned


class ThrottledLoginView(auth_views.LoginView):
    """The site login: a throttled attempt gets the form error, status 429 and Retry-After."""

    authentication_form = ThrottledAuthenticationForm

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.throttled_for:
            response.status_code = 429
            response["Retry-After"] = str(form.throttled_for)
        return response


# --- Password reset: no mail bombing --------------------------------------------------------

RESETS_PER_WINDOW = 5  # reset mails per address asked for, and per client address


def reset_allowed(request, email: str) -> bool:
    """Count one reset request; False once the address or the asker is over the limit."""
    bucket = int(time.time() // _window())
    keys = [
        f"{KEY_PREFIX}:reset:mail:{_digest(email.strip().casefold())}:{bucket}",
        f"{KEY_PREFIX}:reset:addr:{_digest(client_address(request))}:{bucket}",
    ]
    try:
        counts = []
        for key in keys:
            cache.add(key, 0, timeout=_window() + 60)
            counts.append(cache.incr(key))
    except Exception:  # ValueError (expired meanwhile) or a cache outage: let the mail go
        return True
    return max(counts) <= RESETS_PER_WINDOW


class ThrottledPasswordResetView(auth_views.PasswordResetView):
    """Django's reset view; over the limit it sends nothing but answers exactly the same."""

    def form_valid(self, form):
        if not reset_allowed(self.request, form.cleaned_data["email"]):
            log.warning("password reset throttled for %s", client_address(self.request))
            return HttpResponseRedirect(self.get_success_url())
        return super().form_valid(form)


# --- API: the token endpoint --------------------------------------------------------------


def raise_if_throttled(request, username: str | None) -> None:
    """For API views: DRF's 429 with Retry-After when this account or address must wait."""
    wait = retry_after(request, username)
    if wait:
        raise exceptions.Throttled(wait=wait, detail=_wait_message(wait))


# --- API rates: DRF's throttles, counted in one round trip ---------------------------------


def _count(backend, current: str, previous: str, timeout: int) -> tuple[int, int] | None:
    count_in_window = getattr(backend, "count_in_window", None)
    if count_in_window is not None:  # Redis (aios.cache): INCR and GET in one pipeline
        return count_in_window(current, previous, timeout=timeout)
    try:
        backend.add(current, 0, timeout=timeout)
        try:
            mine = backend.incr(current)
        except ValueError:  # expired between add and incr
            backend.set(current, mine := 1, timeout=timeout)
        return mine, backend.get(previous, 0)
    except Exception:
        log.warning("API throttle skipped: cache unavailable", exc_info=True)
        return None


def _seconds_to_wait(counted: int, before: int, *, limit: int, duration: float, elapsed: float):
    """When the estimate (see window_hit) leaves room for one more request."""
    if counted < limit and before:  # later in this window, as the previous one weighs less
        return max(duration * (1 - (limit - counted - 1) / before) - elapsed, 0.001)
    # In the next window, where this window's count becomes the previous one.
    later = duration * (1 - (limit - 1) / counted) if counted else 0.0
    return duration - elapsed + max(later, 0.0)


def window_hit(backend, key: str, *, limit: int, duration: float, now: float | None = None):
    """Count one request of `key` against `limit` per `duration` seconds: 0 when it may go,
    else the seconds until it may (a refused request is not counted, as in DRF).

    Two fixed windows stand in for the sliding one: the estimate is this window's count plus
    the previous window's, weighted by how much of it the sliding window still covers. That
    is exact for evenly spread requests and never lets through more than twice the rate in
    any span of `duration`; a cache outage lets requests through (DRF's throttles do too)."""
    now = time.time() if now is None else now
    window, elapsed = divmod(now, duration)
    current = f"{key}:w{int(window)}"
    counts = _count(backend, current, f"{key}:w{int(window) - 1}", int(2 * duration) + 1)
    if counts is None:
        return 0
    mine, before = counts
    if before * (1 - elapsed / duration) + mine <= limit:
        return 0
    with contextlib.suppress(Exception):
        backend.decr(current)
    return _seconds_to_wait(mine - 1, before, limit=limit, duration=duration, elapsed=elapsed)


class WindowRateThrottle(drf_throttling.SimpleRateThrottle):
    """DRF's rate throttles with the count kept by `window_hit`: one cache round trip per
    request instead of DRF's read and rewrite of a list of timestamps (two round trips and a
    pickled list as long as the rate)."""

    _wait = None

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self._wait = window_hit(
            self.cache, self.key, limit=self.num_requests, duration=self.duration
        )
        return not self._wait or self.throttle_failure()

    def wait(self):
        return self._wait


class AnonRateThrottle(drf_throttling.AnonRateThrottle, WindowRateThrottle):
    """Anonymous clients by address (DRF's rate `anon`)."""


class ScopedRateThrottle(drf_throttling.ScopedRateThrottle, WindowRateThrottle):
    """A view's `throttle_scope` rate (DRF's)."""


class SignedInRateThrottle(drf_throttling.UserRateThrottle, WindowRateThrottle):
    """DRF's per-user rate, for signed-in users only.

    DRF's UserRateThrottle also counts anonymous requests, by address, which AnonRateThrottle
    already does at a tighter rate: a cache round trip per request for a limit that can
    never be the one reached. Anonymous requests are left to AnonRateThrottle."""

    def allow_request(self, request, view):
        if not (request.user and request.user.is_authenticated):
            return True
        return super().allow_request(request, view)
