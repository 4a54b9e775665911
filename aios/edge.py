"""The edge cache in front of the app: which answers it may keep, and purging them on writes.

A shared HTTP cache that purges by surrogate key (Varnish with the xkey vmod,
deploy/varnish/default.vcl; a CDN with surrogate keys works the same way) keeps the anonymous
copies the response cache marks for it: `Cache-Control: ..., s-maxage=S,
stale-while-revalidate=R` and an `xkey` header naming the cache namespaces the copy depends
on. When a namespace's version moves (`aios.response_cache.bump`, run on commit), the same
keys are purged at every EDGE_PURGE_URLS address, off the request path: one thread per process
collects the keys and sends them as PURGE requests with a short timeout, while the write's
request waits for the edge to confirm (EdgeMiddleware: about a round trip, at most
EDGE_PURGE_TIMEOUT), so the next request anywhere sees the new content. A copy the edge
fetched while the write committed is caught by a second purge REPEAT_SECONDS later. An edge
that does not answer costs a write nothing: requests stop waiting for it, the failure is logged
and counted, and its keys are retried until no copy the edge may hold could still show the old
content (MAX_SECONDS).

With EDGE_PURGE_URLS empty (the default) nothing here runs: no edge headers, no purges, no
thread. docs/caching.md ("The edge") has the long explanation.
"""

import atexit
import contextlib
import http.client
import logging
import os
import threading
import time
from collections.abc import Iterable
from urllib.parse import urlsplit

from django.conf import settings

from aios.monitoring import metrics

log = logging.getLogger(__name__)

KEY_HEADER = "xkey"  # on answers: the keys the copy is purged by
PURGE_HEADER = "xkey-purge"  # on PURGE requests: the keys to purge
MAX_SECONDS = 300  # the longest the edge keeps a copy; also how long a failed purge is retried
REPEAT_SECONDS = 5.0  # every purge is sent twice, this far apart
# A copy whose versions were read longer ago than this is not offered to the edge: its answer
# could reach the edge after both purges of a write that committed meanwhile.
SLOW_SECONDS = REPEAT_SECONDS / 2
GRACE_SHARE = 4  # a quarter of a copy's edge lifetime may be served stale while refetched
MAX_PENDING = 10_000  # keys waiting for one edge; past it, one purge of everything instead
HEADER_BYTES = 4000  # keys per PURGE request (Varnish's request headers may be 8 KiB)
BACKOFF_SECONDS = (0.25, 0.5, 1.0, 2.0, 5.0)
LOG_EVERY_SECONDS = 60  # an edge that keeps failing is logged this often, not per purge


def enabled() -> bool:
    return bool(settings.EDGE_PURGE_URLS)


def shared_headers(keys: Iterable[str], *, max_age: int, seconds: float) -> list[tuple]:
    """Cache-Control (and the key header) of an anonymous answer that a shared cache may keep
    `seconds` from now, served stale while refetched for the last quarter of them."""
    if not enabled():
        return [("Cache-Control", f"public, max-age={max_age}")]
    whole = min(int(seconds), MAX_SECONDS)
    keys = sorted(keys)
    if whole < 2 or not keys or not all(_nameable(key) for key in keys):
        return [("Cache-Control", f"public, max-age={max_age}, s-maxage=0")]
    stale = whole // GRACE_SHARE
    control = f"public, max-age={max_age}, s-maxage={whole - stale}, stale-while-revalidate={stale}"
    return [("Cache-Control", control), (KEY_HEADER, " ".join(keys))]


def _nameable(key: str) -> bool:
    # xkey splits its header on spaces and commas: a key holding one would purge wrongly.
    return bool(key) and not any(c in key for c in " ,\t\r\n")


_local = threading.local()  # the current request's last purge (its ticket)


def purge(keys: Iterable[str], *, everything: str) -> None:
    """Purge these keys at every edge, soon and once more REPEAT_SECONDS later. `everything`
    is the key every copy carries: sent instead when too many keys wait for a silent edge."""
    if not enabled():
        return
    keys = [key for key in keys if _nameable(key)]
    if keys:
        _local.ticket = purger().add(keys, everything=everything)


def wait_for_purges() -> None:
    """Wait until every answering edge confirmed what this thread asked to purge since the
    last call (EDGE_PURGE_TIMEOUT at most; an edge that is failing is not waited for)."""
    ticket = getattr(_local, "ticket", None)
    if ticket is not None:
        _local.ticket = None
        purger().wait_confirmed(ticket, settings.EDGE_PURGE_TIMEOUT)


PRIVATE = "private, max-age=0, must-revalidate"  # as the response cache's signed-in copies


class EdgeMiddleware:
    """With an edge: a write's answer leaves once the edge dropped what the write retired
    (whoever reads next, through the edge, gets the new content), and an answer to a signed-in
    request that says nothing about caching says `private`, so no shared cache keeps it, however
    it is configured. Right below the monitoring middleware: the wait counts in the request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        _local.ticket = None
        response = self.get_response(request)
        if not enabled():
            return response
        wait_for_purges()
        if "Cache-Control" not in response and (
            request.META.get("HTTP_AUTHORIZATION")
            or request.COOKIES.get(settings.SESSION_COOKIE_NAME)
        ):
            response["Cache-Control"] = PRIVATE
        return response


# --- The purging thread --------------------------------------------------------------------


class _Edge:
    """One edge address: its keys waiting for a purge, its connection, its backoff.

    `queue` maps a key to (when it is due, when a write first asked for it, whether this is
    its last send). Only the purging thread touches the connection; the queue is shared under
    the purger's lock."""

    def __init__(self, url: str, timeout: float):
        parts = urlsplit(url if "://" in url else f"http://{url}")
        self.url = url
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.https = parts.scheme == "https"
        self.path = parts.path or "/"
        self.timeout = timeout
        self.queue: dict[str, tuple[float, float, bool]] = {}
        self.sending = 0  # the last ticket of the batch being sent
        self.confirmed = 0  # every key asked for up to this ticket was purged
        self.retry_at = 0.0
        self.failures = 0  # in a row
        self.failed_since_log = 0
        self.logged_at = 0.0
        self.conn = None

    def due(self, now: float) -> bool:
        return now >= self.retry_at and any(due <= now for due, _, _ in self.queue.values())

    def next_time(self, now: float) -> float | None:
        if not self.queue:
            return None
        return max(min(due for due, _, _ in self.queue.values()), self.retry_at)

    def take(self, now: float) -> dict[str, tuple[float, bool]]:
        taken = {k: (since, last) for k, (due, since, last) in self.queue.items() if due <= now}
        for key in taken:
            del self.queue[key]
        return taken

    def send(self, keys: list[str]) -> None:
        """PURGE these keys, in as many requests as their length needs; raises on failure."""
        for chunk in _chunks(keys):
            headers = {PURGE_HEADER: " ".join(chunk)}
            while True:
                reused = self.conn is not None
                if not reused:
                    kind = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
                    self.conn = kind(self.host, self.port, timeout=self.timeout)
                try:
                    self.conn.request("PURGE", self.path, headers=headers)
                    response = self.conn.getresponse()
                    response.read()
                    break
                except (OSError, http.client.HTTPException) as exc:
                    self.close()
                    if not reused or isinstance(exc, TimeoutError):
                        raise
                    # The edge closed the idle connection: once more on a fresh one.
            if not 200 <= response.status < 300:
                self.close()
                raise PurgeRefused(f"{response.status} {response.reason}")

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.close()
            self.conn = None


class PurgeRefused(Exception):
    pass


def _chunks(keys: list[str]):
    chunk, size = [], 0
    for key in keys:
        if chunk and size + len(key) + 1 > HEADER_BYTES:
            yield chunk
            chunk, size = [], 0
        chunk.append(key)
        size += len(key) + 1
    if chunk:
        yield chunk


class Purger:
    """One per process and configuration: `add` queues keys (no network, microseconds) and
    wakes the thread, which sends every due key to every edge."""

    def __init__(self, urls: list[str], timeout: float):
        self.edges = [_Edge(url, timeout) for url in urls]
        self._cond = threading.Condition()
        self._thread = None
        self._stopped = False
        self._busy = False
        self._tickets = 0

    def add(self, keys: list[str], *, everything: str) -> int:
        """Queue the keys for every edge; returns their ticket (for `wait_confirmed`)."""
        now = time.monotonic()
        with self._cond:
            self._tickets += 1
            for edge in self.edges:
                for key in keys:
                    found = edge.queue.get(key)
                    # Already waiting for its first send: keep when it was first asked.
                    since = found[1] if found is not None and not found[2] else now
                    edge.queue[key] = (now, since, False)
                if len(edge.queue) > MAX_PENDING:
                    oldest = min(since for _, since, _ in edge.queue.values())
                    log.warning(
                        "edge %s: %d keys waiting; purging everything instead",
                        edge.url,
                        len(edge.queue),
                    )
                    edge.queue = {everything: (now, oldest, False)}
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="edge-purge", daemon=True)
                self._thread.start()
            self._cond.notify_all()
            return self._tickets

    def wait_confirmed(self, ticket: int, timeout: float) -> bool:
        """Wait until every edge that is not failing purged the keys of `ticket`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while any(e.confirmed < ticket and not e.failures for e in self.edges):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no key waits for its first send (repeats may still be due); False when
        `timeout` passed first."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._busy or any(
                not last for edge in self.edges for _, _, last in edge.queue.values()
            ):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._stopped:
                        return
                    now = time.monotonic()
                    ready = [edge for edge in self.edges if edge.due(now)]
                    if ready:
                        break
                    times = [t for edge in self.edges if (t := edge.next_time(now)) is not None]
                    self._cond.wait(max(min(times) - now, 0.001) if times else None)
                batches = [(edge, edge.take(now)) for edge in ready]
                for edge in ready:
                    edge.sending = self._tickets  # a first send is due at once: all taken
                self._busy = True
            try:
                for edge, keys in batches:
                    self._send(edge, keys)
            except Exception:  # never let the thread die: the next write would purge nothing
                log.exception("edge purge thread error")
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _send(self, edge: _Edge, keys: dict[str, tuple[float, bool]]) -> None:
        try:
            edge.send(sorted(keys))
        except (OSError, http.client.HTTPException, PurgeRefused) as exc:
            self._failed(edge, keys, exc)
            return
        now = time.monotonic()
        firsts = [since for since, last in keys.values() if not last]
        metrics.record_edge_purge(ok=True, delay=now - min(firsts) if firsts else None)
        if edge.failures:
            log.info("edge %s purges again after %d failed attempts", edge.url, edge.failures)
        edge.failures = edge.failed_since_log = 0
        edge.retry_at = 0.0
        with self._cond:
            edge.confirmed = max(edge.confirmed, edge.sending)
            for key, (since, last) in keys.items():
                if not last and key not in edge.queue:  # not asked again meanwhile
                    edge.queue[key] = (now + REPEAT_SECONDS, since, True)

    def _failed(self, edge: _Edge, keys: dict, exc: Exception) -> None:
        now = time.monotonic()
        metrics.record_edge_purge(ok=False)
        edge.failures += 1
        edge.failed_since_log += 1
        edge.retry_at = now + BACKOFF_SECONDS[min(edge.failures, len(BACKOFF_SECONDS)) - 1]
        dropped = 0
        with self._cond:
            for key, (since, last) in keys.items():
                if key in edge.queue:
                    continue  # asked again meanwhile: that entry stands
                if now - since > MAX_SECONDS:
                    dropped += 1  # every copy it could retire has expired at the edge by now
                else:
                    edge.queue[key] = (now, since, last)
        if dropped:
            metrics.record_edge_purge_dropped(dropped)
        if edge.failures == 1 or now - edge.logged_at >= LOG_EVERY_SECONDS or dropped:
            log.warning(
                "edge %s did not purge (%s): %d failed attempts, %d keys waiting, %d dropped",
                edge.url,
                exc,
                edge.failed_since_log,
                len(edge.queue),
                dropped,
            )
            edge.logged_at = now
            edge.failed_since_log = 0


_purgers: dict[tuple, Purger] = {}
_purgers_pid = os.getpid()
_purgers_lock = threading.Lock()


def purger() -> Purger:
    """This process's purger for the current settings (a fork starts its own)."""
    global _purgers_pid
    key = (tuple(settings.EDGE_PURGE_URLS), settings.EDGE_PURGE_TIMEOUT)
    found = _purgers.get(key) if _purgers_pid == os.getpid() else None
    if found is None:
        with _purgers_lock:
            if _purgers_pid != os.getpid():
                _purgers.clear()  # the parent's thread did not come along
                _purgers_pid = os.getpid()
            found = _purgers.get(key)
            if found is None:
                for old in _purgers.values():
                    old.stop()
                _purgers.clear()
                found = _purgers[key] = Purger(list(key[0]), key[1])
    return found


@atexit.register
def _flush_at_exit() -> None:
    # A worker shutting down sends what its last writes asked for (a second at most).
    if _purgers_pid == os.getpid():
        for found in list(_purgers.values()):
            found.wait_idle(1.0)
