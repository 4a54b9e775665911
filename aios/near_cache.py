"""An exact per-process copy of hot Redis keys, kept by Redis's own invalidation messages.

Redis server-assisted client-side caching (CLIENT TRACKING, broadcast mode): Redis sends this
process the name of every key under the tracked prefixes that anybody changes, expires or
evicts, and a flush when the database is flushed. A read first drains those messages (a
non-blocking socket read), so a value kept here is never older than what Redis held when the
reading request began; the message for a write is queued on this process's socket before the
writer hears its reply. While the invalidation connection is down nothing is kept, and every
read goes to Redis.

Thread-safe (gthread workers); created lazily per process, so a fork never shares it.
"""

import contextlib
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

log = logging.getLogger(__name__)

INVALIDATE_CHANNEL = b"__redis__:invalidate"
RETRY_SECONDS = 2.0  # after losing the invalidation connection, at most one reconnect per this
_MISSING = object()


class NearCache:
    """`get(key)` answers (True, value) from memory or (False, None); `fill` stores what a
    Redis read returned unless an invalidation for that key arrived meanwhile."""

    def __init__(
        self,
        connect: Callable[[], object],
        *,
        prefixes: Iterable[bytes],
        max_bytes: int,
        size_of: Callable[[object], int],
        healthy: Callable[[], bool] = lambda: True,
        on_failure: Callable[[BaseException], None] = lambda exc: None,
        generation: Callable[[], int] = lambda: 0,
    ):
        self._connect = connect  # () -> a fresh redis-py Connection
        self._healthy = healthy  # whether Redis may be tried now (the circuit breaker)
        self._on_failure = on_failure
        # Changes when the Redis master changes (aios/redis_ha.py): the invalidations that
        # kept this copy exact came from the old one.
        self._generation = generation
        self._started_in = None  # the generation the connections below were made in
        self.prefixes = tuple(prefixes)
        self.max_bytes = max_bytes
        self._size_of = size_of
        self._lock = threading.Lock()
        self._data: OrderedDict[bytes, tuple[object, int]] = OrderedDict()
        self._bytes = 0
        self._owner = None  # the connection whose tracking state Redis keeps
        self._listener = None  # the connection subscribed to the invalidation channel
        self._retry_at = 0.0
        self._filling = 0  # reads in flight: invalidations meanwhile are remembered
        self._touched: set[bytes] = set()
        self._flushed = False
        self.invalidations = 0
        self.flushes = 0

    # -- connection --

    @property
    def active(self) -> bool:
        return self._listener is not None

    def _start(self) -> None:
        owner = listener = None
        try:
            listener = self._connect()
            listener.send_command("CLIENT", "ID")
            listener_id = listener.read_response()
            listener.send_command("SUBSCRIBE", INVALIDATE_CHANNEL)
            listener.read_response()
            owner = self._connect()
            args = ["CLIENT", "TRACKING", "ON", "REDIRECT", listener_id, "BCAST"]
            for prefix in self.prefixes:
                args += ["PREFIX", prefix]
            owner.send_command(*args)
            if owner.read_response() not in (b"OK", "OK"):
                raise ConnectionError("CLIENT TRACKING refused")
        except Exception as exc:  # any failure leaves the near copy off
            for conn in (owner, listener):
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.disconnect()
            log.warning("near cache off (retry in %.0f s): %s", RETRY_SECONDS, exc)
            self._on_failure(exc)
            return
        self._owner, self._listener = owner, listener
        self._started_in = self._generation()

    def _stop(self, reason: str) -> None:
        for conn in (self._owner, self._listener):
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.disconnect()
        self._owner = self._listener = None
        self._clear()
        self._retry_at = time.monotonic() + RETRY_SECONDS
        log.warning("near cache off: %s", reason)

    def _clear(self) -> None:
        self._data.clear()
        self._bytes = 0
        self.flushes += 1
        if self._filling:
            self._flushed = True

    # -- invalidation --

    def drain(self) -> None:
        """Apply every invalidation Redis has sent; (re)connect when due. Call with no lock."""
        with self._lock:
            if self._listener is None:
                if time.monotonic() >= self._retry_at and self._healthy():
                    self._retry_at = time.monotonic() + RETRY_SECONDS
                    self._start()
                    self._clear()  # whatever was kept before is unproven
                return
            if self._generation() != self._started_in:
                self._stop("the Redis master changed")
                return
            listener = self._listener
            try:
                while listener.can_read(timeout=0):
                    self._apply(listener.read_response())
            except Exception as exc:  # the connection is unusable
                self._stop(f"{type(exc).__name__}: {exc}")
                self._on_failure(exc)

    def _apply(self, message) -> None:
        if not isinstance(message, list) or len(message) < 3 or message[0] != b"message":
            return
        keys = message[2]
        if keys is None:  # FLUSHDB / FLUSHALL
            self._clear()
            return
        for key in keys:
            self.invalidations += 1
            found = self._data.pop(key, None)
            if found is not None:
                self._bytes -= found[1]
            if self._filling:
                self._touched.add(key)

    # -- reads and fills --

    def get(self, key: bytes):
        with self._lock:
            found = self._data.get(key, _MISSING)
            if found is _MISSING:
                return False, None
            self._data.move_to_end(key)
            return True, found[0]

    def begin_fill(self) -> bool:
        """Before reading from Redis: whether the result may be kept (the copy is active)."""
        with self._lock:
            if self._listener is None:
                return False
            self._filling += 1
            return True

    def end_fill(self, values: dict[bytes, object]) -> None:
        """After the read (and a drain): keep the values no invalidation touched meanwhile."""
        with self._lock:
            self._filling -= 1
            current = self._generation() == self._started_in
            if self._listener is not None and not self._flushed and current:
                for key, value in values.items():
                    if key in self._touched:
                        continue
                    size = self._size_of(value) + len(key) + 64
                    if size > self.max_bytes // 8:
                        continue  # one huge value must not empty the whole copy
                    old = self._data.pop(key, None)
                    if old is not None:
                        self._bytes -= old[1]
                    self._data[key] = (value, size)
                    self._bytes += size
                while self._bytes > self.max_bytes and self._data:
                    _, (_, size) = self._data.popitem(last=False)
                    self._bytes -= size
            if not self._filling:
                self._touched.clear()
                self._flushed = False

    def forget(self, keys: Iterable[bytes]) -> None:
        """This process changed these keys: drop them now, not when the message comes."""
        with self._lock:
            for key in keys:
                found = self._data.pop(key, None)
                if found is not None:
                    self._bytes -= found[1]
                if self._filling:
                    self._touched.add(key)

    def clear(self) -> None:
        with self._lock:
            self._clear()

    def close(self) -> None:
        with self._lock:
            for conn in (self._owner, self._listener):
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.disconnect()
            self._owner = self._listener = None
            self._data.clear()
            self._bytes = 0

    def stats(self) -> dict:
        with self._lock:
            return {
                "active": self._listener is not None,
                "keys": len(self._data),
                "bytes": self._bytes,
                "invalidations": self.invalidations,
                "flushes": self.flushes,
            }


class PerProcess:
    """One object per process (rebuilt after a fork), built on first use."""

    def __init__(self, factory: Callable[[], object]):
        self._factory = factory
        self._pid = None
        self._value = None
        self._lock = threading.Lock()

    def get(self):
        pid = os.getpid()
        if self._pid != pid:
            with self._lock:
                if self._pid != pid:
                    self._value = self._factory()
                    self._pid = pid
        return self._value

    def reset(self) -> None:
        with self._lock:
            value, self._value, self._pid = self._value, None, None
        close = getattr(value, "close", None)
        if callable(close):
            close()
