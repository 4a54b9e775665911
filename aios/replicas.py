"""Streaming replicas: reads go to a healthy replica that has what they must see, everything
else to the primary (DATABASE_REPLICA_URLS; the long explanation is docs/scaling.md).

- `read_alias()` is the one place that picks a database for a read: the router asks it for
  ORM reads, and raw SQL (`aios.statements`, the stats and search queries) asks it directly.
  It answers a replica only inside a GET, HEAD or OPTIONS request (`RoutingMiddleware`) that
  has written nothing and holds no transaction on the primary; commands, threads, writes,
  `select_for_update` and migrations use the primary.
- Read-your-writes: a request that wrote leaves its credentials (session, API token) a
  *floor*, the primary's WAL position after its commits. Their reads go to a replica only once
  it has replayed past that floor. Cache fills take the floor of the namespaces they depend
  on (`aios.response_cache`), so no copy is made from data older than what it replaces.
- `Health`: a thread per process checks every replica once per
  DATABASE_REPLICA_CHECK_INTERVAL; one that is down, promoted or lagging past
  DATABASE_REPLICA_MAX_LAG is skipped until a check finds it well again.
- `RetryOnPrimaryMiddleware`: a request whose read failed on a replica (it died mid-query)
  and that wrote nothing runs again on the primary instead of answering 5xx.

With no replica configured none of this is installed and `read_alias()` is the primary.
"""

import contextvars
import hashlib
import logging
import math
import os
import random
import threading
import time
from collections import deque
from dataclasses import dataclass

from django.conf import settings
from django.db import (
    DEFAULT_DB_ALIAS,
    DatabaseError,
    InterfaceError,
    OperationalError,
    connections,
)

from aios.monitoring import metrics
from aios.resilience import overload_reason

log = logging.getLogger(__name__)

PRIMARY = DEFAULT_DB_ALIAS
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# A floor no replica reaches: the primary's position could not be read after a write, so
# whoever depends on it reads the primary until the floor expires.
UNKNOWN_LSN = 1 << 62
LSN_DIGITS = 20  # floors are stored zero-padded, so Redis compares them as strings

HEALTHY, LAGGING, DOWN, UNKNOWN = "healthy", "lagging", "down", "unknown"


def enabled() -> bool:
    return bool(settings.DATABASE_REPLICAS)


def floor_seconds() -> float:
    """How long a floor is kept. Past it, every replica still chosen has replayed the write:
    a chosen replica lags at most MAX_LAG as of a check at most one interval old."""
    return settings.DATABASE_REPLICA_MAX_LAG + 2 * settings.DATABASE_REPLICA_CHECK_INTERVAL + 5


# --- The request's routing ------------------------------------------------------------------


class _Routing:
    """What one request's reads may use. `floor`: the client's own floor; `fill`: the floor of
    the cache copy being filled; `alias`: the database its reads went to so far."""

    __slots__ = ("alias", "credentials", "fill", "floor", "lsn", "primary_only", "replica",
                 "retried", "wrote")  # fmt: skip

    def __init__(self, *, primary_only: bool, floor: int = 0):
        self.primary_only = primary_only
        self.floor = floor
        self.fill = 0
        self.wrote = False
        self.alias = None
        self.replica = None  # the last replica a read went to
        self.lsn = None  # the primary's position read after the request's last commit
        self.credentials: list[str] = []  # credentials handed out by this request
        self.retried = False


_routing: contextvars.ContextVar["_Routing | None"] = contextvars.ContextVar(
    "aios_replica_routing", default=None
)


def read_alias() -> str:
    """The database alias a read should use now."""
    if not settings.DATABASE_REPLICAS:
        return PRIMARY
    state = _routing.get()
    if state is None or state.primary_only or state.wrote:
        return PRIMARY
    if connections[PRIMARY].in_atomic_block:
        return PRIMARY  # a transaction reads what it is about to write
    if state.alias == PRIMARY:
        return PRIMARY  # once read from the primary, never from anything older
    floor = state.floor if state.floor >= state.fill else state.fill
    alias = state.alias
    if alias is None or not health.usable(alias, floor):
        alias = state.alias = health.choose(floor)
        if alias != PRIMARY:
            state.replica = alias
    return alias


def note_write() -> None:
    """The request is writing: from now on it reads the primary, and leaves a floor."""
    state = _routing.get()
    if state is not None:
        state.wrote = True
        state.lsn = None


def note_credential(authorization: str) -> None:
    """A credential this request hands out (a new API token): its first uses read what this
    request wrote."""
    state = _routing.get()
    if state is not None:
        state.credentials += credential_keys({}, authorization)


class filling:
    """`with filling(floor):` the reads inside make a cache copy that depends on data written
    up to `floor`: a replica that has not replayed that far is not used."""

    __slots__ = ("floor", "previous", "state")

    def __init__(self, floor: int):
        self.floor = floor
        self.state = None

    def __enter__(self):
        state = self.state = _routing.get()
        if state is not None:
            self.previous = state.fill
            state.fill = max(state.fill, self.floor)
        return self

    def __exit__(self, *exc):
        if self.state is not None:
            self.state.fill = self.previous
        return False


def primary_lsn() -> int:
    """The primary's WAL position now, in bytes: after a commit, at or past its commit record.
    UNKNOWN_LSN when it cannot be read."""
    state = _routing.get()
    if state is not None and state.lsn is not None:
        return state.lsn
    connection = connections[PRIMARY]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")
            lsn = int(cursor.fetchone()[0])
    except DatabaseError as exc:
        log.warning("could not read the primary's WAL position (%s); reads that depend on "
                    "the last write use the primary for %.0f s", exc, floor_seconds())  # fmt: skip
        return UNKNOWN_LSN
    if state is not None and not connection.in_atomic_block:
        state.lsn = lsn  # valid until the request writes again (note_write)
    return lsn


def encode_lsn(lsn: int) -> bytes:
    return str(lsn).zfill(LSN_DIGITS).encode()


# --- Credentials and their floors -----------------------------------------------------------


def _credential_key(kind: str, value: str) -> str:
    digest = hashlib.sha256(f"{kind}\0{value}".encode("utf-8", "surrogateescape")).hexdigest()
    return f"rc:w:{digest[:40]}"


def credential_keys(cookies: dict, authorization: str) -> list[str]:
    """The floor keys of what authenticates a request: its session and its Authorization
    header (scheme case and spacing as DRF ignores them)."""
    keys = []
    session = cookies.get(settings.SESSION_COOKIE_NAME)
    if session:
        keys.append(_credential_key("session", session))
    parts = authorization.split()
    if parts:
        keys.append(_credential_key("authorization", " ".join([parts[0].lower(), *parts[1:]])))
    return keys


_store_trouble_until = 0.0


def _client_floor(keys: list[str]) -> int | None:
    """The highest floor left for these credentials; None when it cannot be known (the cache
    is unreachable, or was moments ago and may have missed a floor)."""
    global _store_trouble_until
    from aios import response_cache

    store = response_cache.store()
    found = store.get_many(keys)
    if not store.available():
        _store_trouble_until = time.monotonic() + floor_seconds()
        return None
    if time.monotonic() < _store_trouble_until:
        return None
    return max((value for value in found.values() if isinstance(value, int)), default=0)


def _leave_floor(request, response, state: _Routing) -> None:
    global _store_trouble_until
    from aios import response_cache

    keys = credential_keys(request.COOKIES, request.META.get("HTTP_AUTHORIZATION", ""))
    session = response.cookies.get(settings.SESSION_COOKIE_NAME)
    if session is not None and session.value:  # a sign-in's new session
        keys.append(_credential_key("session", session.value))
    keys += state.credentials
    if not keys:
        return
    store = response_cache.store()
    store.raise_floors(dict.fromkeys(keys, primary_lsn()), timeout=floor_seconds())
    if not store.available():
        _store_trouble_until = time.monotonic() + floor_seconds()


class RoutingMiddleware:
    """Opens each request's routing: safe methods may read replicas, within the client's
    floor; other methods read the primary. A request that wrote leaves its floor."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method not in SAFE_METHODS:
            # A write decides from what it reads: all of it on the primary.
            state = _Routing(primary_only=True)
        else:
            keys = credential_keys(request.COOKIES, request.META.get("HTTP_AUTHORIZATION", ""))
            floor = _client_floor(keys) if keys else 0
            state = _Routing(primary_only=floor is None, floor=floor or 0)
        token = _routing.set(state)
        try:
            response = self.get_response(request)
            if state.wrote:
                _leave_floor(request, response, state)
        finally:
            _routing.reset(token)
        return response


class RetryOnPrimaryMiddleware:
    """A view that failed on a replica runs again on the primary, when it wrote nothing.

    The replica is marked down in this process at once when its connection failed (the next
    check decides again); a replica's exhausted pool only sends this read to the primary, and a
    statement timeout stays the overload guard's 503 (running it again would double it)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        state = _routing.get()
        if (
            state is None
            or state.replica is None
            or state.retried
            or state.wrote
            or not isinstance(exception, DatabaseError)
        ):
            return None
        reason = overload_reason(exception)
        if reason == "statement_timeout":
            return None
        failed = state.replica
        down = reason is None and isinstance(exception, OperationalError | InterfaceError)
        health.report_failure(failed, exception, down=down)
        log.warning("read on %s failed (%s: %s); %s runs again on the primary",
                    failed, type(exception).__name__, exception, request.path)  # fmt: skip
        metrics.replica_retries.labels(alias=failed).inc()
        state.retried = True
        state.primary_only = True
        match = request.resolver_match
        response = match.func(request, *match.args, **match.kwargs)
        if hasattr(response, "render") and callable(response.render):
            response = response.render()
        return response


# --- Health ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReplicaState:
    alias: str
    status: str = UNKNOWN
    replay_lsn: int = 0
    lag: float | None = None  # seconds of the primary's history it has not replayed
    error: str = ""

    def as_dict(self) -> dict:
        lag = None if self.lag is None or math.isinf(self.lag) else round(self.lag, 3)
        found = {"status": self.status, "lag_seconds": lag, "replay_lsn": self.replay_lsn}
        if self.error:
            found["error"] = self.error
        return found


_PRIMARY_SQL = "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn"
_REPLICA_SQL = (
    "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn() - '0/0'::pg_lsn,"
    " EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp())"
)
# Connection parameters of Django's or psycopg's pool, not libpq's.
_NOT_LIBPQ = {"pool", "options", "isolation_level", "server_side_binding", "assume_role",
              "prepare_threshold"}  # fmt: skip


def staleness(samples, replay: int, primary: int | None, now: float, reported) -> float:
    """Seconds of the primary's history a replica that replayed up to `replay` has not seen.

    `samples` are (time, the primary's position then), oldest first: everything committed
    before a sample the replica has reached is on it. `primary` is the position now (None when
    unknown); `reported` the replica's own estimate (seconds since its last replayed commit),
    used while this process has no sample old enough to tell."""
    if primary is not None and replay >= primary:
        return 0.0
    for at, lsn in reversed(samples):
        if lsn <= replay:
            return now - at
    if reported is None:
        return math.inf
    oldest = now - samples[0][0] if samples else 0.0
    return max(float(reported), oldest)


# A process's first routing decision waits this long for its first check, so a fresh worker
# does not send every read to the primary until its thread has looked (or a replica stalls it).
FIRST_CHECK_WAIT = 0.5


class Health:
    """Each process's view of its replicas, refreshed by a thread of its own (started on the
    first routing decision, again after a fork)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._pid = None
        self._states: dict[str, ReplicaState] = {}
        self._samples: deque[tuple[float, int]] = deque()
        self._connections: dict = {}
        self._wake = threading.Event()
        self.checks = 0

    def ensure_started(self) -> None:
        pid = os.getpid()
        if self._pid == pid:
            return
        with self._lock:
            if self._pid == pid:
                return
            self._states = {alias: ReplicaState(alias) for alias in settings.DATABASE_REPLICAS}
            self._samples = deque()
            self._connections = {}
            self._wake = threading.Event()
            checked = threading.Event()
            self._pid = pid
            thread = threading.Thread(
                target=self._run, args=(checked,), name="aios-replica-health", daemon=True
            )
            thread.start()
        checked.wait(FIRST_CHECK_WAIT)  # only the starting thread; the others read the primary

    def states(self) -> dict[str, ReplicaState]:
        self.ensure_started()
        return dict(self._states)

    def usable(self, alias: str, floor: int) -> bool:
        state = self._states.get(alias)
        return state is not None and state.status == HEALTHY and state.replay_lsn >= floor

    def choose(self, floor: int) -> str:
        """A healthy replica that has replayed up to `floor`, or the primary."""
        self.ensure_started()
        fits = [
            alias
            for alias, state in self._states.items()
            if state.status == HEALTHY and state.replay_lsn >= floor
        ]
        return random.choice(fits) if fits else PRIMARY

    def report_failure(self, alias: str, exc: BaseException, *, down: bool) -> None:
        """A read on `alias` failed: check again now rather than at the next interval, and
        when its connection failed (`down`) skip it until that check says otherwise."""
        if down:
            with self._lock:
                state = self._states.get(alias)
                if state is not None and state.status != DOWN:
                    error = f"{type(exc).__name__}: {exc}".strip()[:200]
                    self._states = {**self._states, alias: ReplicaState(alias, DOWN, error=error)}
                    log.warning("replica %s down: %s", alias, error)
                    metrics.replica_usable.labels(alias=alias).set(0)
        self._wake.set()

    def _run(self, checked: threading.Event) -> None:
        interval = settings.DATABASE_REPLICA_CHECK_INTERVAL
        wake = self._wake
        while self._pid == os.getpid():
            started = time.monotonic()
            try:
                self.check()
            except Exception:  # the checker must outlive anything one check meets
                log.exception("replica health check failed")
            checked.set()
            wake.wait(max(interval - (time.monotonic() - started), 0))
            wake.clear()
            # A failed read wakes it early; failures in a row still cost one check per tenth.
            time.sleep(max(started + interval / 10 - time.monotonic(), 0))

    def check(self) -> None:
        """Read the primary's position and every replica's replay, and judge each."""
        now = time.monotonic()
        try:
            (primary,) = self._query(PRIMARY, _PRIMARY_SQL)
            primary = int(primary)
        except Exception:
            primary = None  # replicas are then judged by what they say of themselves
        if primary is not None:
            self._samples.append((now, primary))
        keep = settings.DATABASE_REPLICA_MAX_LAG + 4 * settings.DATABASE_REPLICA_CHECK_INTERVAL
        while len(self._samples) > 1 and (
            now - self._samples[1][0] > keep or len(self._samples) > 10_000
        ):
            self._samples.popleft()  # the newest sample older than `keep` stays
        states = {alias: self._judge(alias, primary, now) for alias in self._states}
        with self._lock:
            before, self._states = self._states, states
        self.checks += 1
        for alias, state in states.items():
            self._report(before.get(alias), state)

    def _judge(self, alias: str, primary: int | None, now: float) -> ReplicaState:
        try:
            in_recovery, replay, reported = self._query(alias, _REPLICA_SQL)
        except Exception as exc:
            return ReplicaState(alias, DOWN, error=f"{type(exc).__name__}: {exc}".strip()[:200])
        if not in_recovery:
            # Promoted: writes still go to the configured primary, so it drifts apart.
            return ReplicaState(alias, DOWN, error="not in recovery (promoted?)")
        replay = int(replay or 0)
        lag = staleness(self._samples, replay, primary, now, reported)
        status = HEALTHY if lag <= settings.DATABASE_REPLICA_MAX_LAG else LAGGING
        return ReplicaState(alias, status, replay_lsn=replay, lag=lag)

    def _query(self, alias: str, sql: str):
        import psycopg

        connection = self._connections.get(alias)
        if connection is None or connection.closed:
            connection = self._connections[alias] = psycopg.connect(**_check_params(alias))
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql)
                return cursor.fetchone()
        except Exception:
            self._connections.pop(alias, None)
            connection.close()
            raise

    @staticmethod
    def _report(before: ReplicaState | None, state: ReplicaState) -> None:
        alias = state.alias
        lag = -1.0 if state.lag is None or math.isinf(state.lag) else state.lag
        metrics.replica_lag.labels(alias=alias).set(lag)
        metrics.replica_usable.labels(alias=alias).set(1 if state.status == HEALTHY else 0)
        was = before.status if before is not None else UNKNOWN
        if state.status == was:
            return
        if state.status == HEALTHY:
            (log.info if was == UNKNOWN else log.warning)("replica %s healthy", alias)
        elif state.status == LAGGING:
            log.warning("replica %s lagging %.1f s (over %s s): skipped", alias, state.lag,
                        settings.DATABASE_REPLICA_MAX_LAG)  # fmt: skip
        else:
            log.warning("replica %s down: %s", alias, state.error)


def _check_params(alias: str) -> dict:
    """A health check's own connection (not the pool's): short timeouts, autocommit."""
    config = settings.DATABASES[alias]
    params = {k: v for k, v in config.get("OPTIONS", {}).items() if k not in _NOT_LIBPQ}
    params.update(
        dbname=config["NAME"],
        user=config.get("USER") or None,
        password=config.get("PASSWORD") or None,
        host=config.get("HOST") or None,
        port=config.get("PORT") or None,
        connect_timeout=2,
        application_name="aios-replica-check",
        options="-c statement_timeout=2000",
        autocommit=True,
    )
    return {k: v for k, v in params.items() if v is not None}


health = Health()


class PrimaryReplicaRouter:
    """Reads where `read_alias()` says; writes, and migrations, on the primary."""

    def db_for_read(self, model, **hints):
        return read_alias()

    def db_for_write(self, model, **hints):
        note_write()
        return PRIMARY

    def allow_relation(self, obj1, obj2, **hints):
        return True  # every alias is the same database

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == PRIMARY
