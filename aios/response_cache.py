"""Finished responses kept in the cache, answered by views and by the WSGI hit path.

A view opts in with a `CachePolicy` (as a decorator, or `cache_policies` on a class
view). Its copy records the version of every namespace it depends on; a write retires a
namespace by giving it a new version (`bump`), which every copy that read the old one sees.
Counters (a namespace's second version, `bump(counters=...)`) may lag by COUNTER_STALENESS
seconds: a copy whose counters moved stays servable that long, then one request recomputes
it while the others keep the old copy. The writer's own next reads never see the old counters.

`HitPath` (aios/wsgi.py) answers a fresh copy before Django's middleware and URL resolver;
everything else (misses, stale copies, throttled clients) goes through Django. The long
explanation is docs/caching.md. Nothing here knows the apps' namespaces.
"""

import contextlib
import dataclasses
import functools
import hashlib
import json
import logging
import os
import secrets
import struct
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.filebased import FileBasedCache
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.http.request import split_domain_port, validate_host
from django.utils.cache import cc_delim_re

from aios import compression, edge, redis_ha, replicas
from aios.cache import UNAVAILABLE_ERRORS, cache_is_available
from aios.monitoring import metrics, reporter
from aios.monitoring.context import sane_request_id
from aios.near_cache import NearCache, PerProcess

log = logging.getLogger(__name__)

EPOCH_NS = "*"  # every copy depends on it: `bump([EPOCH_NS])` retires everything
STALE_SECONDS = 120  # a shared copy past its TTL may be served this long while recomputed
LOCK_SECONDS = 10  # recomputation lock; outlives any sane view
WAIT_SECONDS = 2.0  # a cold key's waiters give up after this and compute themselves
POLL_SECONDS = 0.02
# Browsers and CDNs keep an anonymous copy at most this long: unlike this cache, nobody
# retires theirs on a write.
BROWSER_MAX_AGE = 60
VERSION_TTL = 24 * 3600  # an expired version only costs a miss (versions are never reused)
VOUCHER_SECONDS = 60  # how long a credential's "it authenticates" is trusted
MESSAGES_COOKIE = "messages"  # django.contrib.messages' cookie: the page would consume it

# Set afresh on every response, or per request by the middleware above the cache.
_UNSTORED_HEADERS = {
    "content-length",
    "content-encoding",
    "etag",
    "cache-control",
    "expires",
    "date",
    "set-cookie",
    "x-request-id",
}

# --- Versions ------------------------------------------------------------------------------
# A version is the bump's time in milliseconds (high bits) and 20 random bits: never reused,
# and it tells when a user's namespace last moved (the writer's read-your-writes, below).


def _now() -> float:
    return time.time()


def new_version() -> int:
    return (time.time_ns() // 1_000_000) << 20 | secrets.randbits(20)


def version_time(version: int | None) -> float:
    return 0.0 if not version else (version >> 20) / 1000


def _version_key(namespace: str) -> str:
    return f"rc:v:{namespace}"


def _counter_key(namespace: str) -> str:
    return f"rc:c:{namespace}"


# A Redis master that takes over (Sentinel) may lack bumps its predecessor acknowledged:
# it starts a new epoch before serving anything (aios/redis_ha.py).
redis_ha.renew_on_takeover(
    _version_key(EPOCH_NS), lambda: str(new_version()), ttl_seconds=VERSION_TTL
)


def _entry_key(digest: str) -> str:
    return f"rc:e:{digest}"


def _voucher_key(credential: str) -> str:
    return f"rc:a:{credential}"


def _lock_key(digest: str) -> str:
    return f"rc:l:{digest}"


def _floor_key(namespace: str) -> str:
    """The primary's WAL position when the namespace was last retired (with replicas)."""
    return f"rc:n:{namespace}"


# --- Stored copies -------------------------------------------------------------------------
# Bytes, written and read as they are: b"RC1" + header length + JSON header + body + codings.

_MAGIC = b"RC1"


class Entry:
    __slots__ = (
        "body",
        "cdeps",
        "codings",
        "created",
        "deps",
        "etag",
        "everyone",
        "headers",
        "label",
        "size",
        "soft",
        "status",
        "view",
    )

    def __init__(self, **fields):
        for name in self.__slots__:
            setattr(self, name, fields.get(name))

    def encode(self) -> bytes:
        order = sorted(self.codings)
        header = {
            "deps": self.deps,
            "cdeps": self.cdeps,
            "created": self.created,
            "soft": self.soft,
            "status": self.status,
            "headers": self.headers,
            "etag": self.etag,
            "label": self.label,
            "view": self.view,
            "everyone": self.everyone,
            "codings": [[coding, len(self.codings[coding])] for coding in order],
            "length": len(self.body),
        }
        raw = json.dumps(header, separators=(",", ":")).encode()
        parts = [_MAGIC, struct.pack(">I", len(raw)), raw, self.body]
        parts += [self.codings[coding] for coding in order]
        return b"".join(parts)

    @classmethod
    def decode(cls, data: bytes) -> "Entry | None":
        if not isinstance(data, bytes) or not data.startswith(_MAGIC):
            return None
        (size,) = struct.unpack_from(">I", data, 3)
        header = json.loads(data[7 : 7 + size])
        offset = 7 + size
        body = data[offset : offset + header["length"]]
        offset += header["length"]
        codings = {}
        for coding, length in header["codings"]:
            codings[coding] = data[offset : offset + length]
            offset += length
        return cls(
            deps=header["deps"],
            cdeps=header["cdeps"],
            created=header["created"],
            soft=header["soft"],
            status=header["status"],
            headers=[tuple(pair) for pair in header["headers"]],
            etag=header["etag"],
            body=body,
            codings=codings,
            label=header["label"],
            view=header["view"],
            everyone=header["everyone"],
            size=len(data),
        )


def _decode(key: str, raw):
    """A stored value by its kind (the key's prefix)."""
    if raw is None:
        return None
    if key.startswith(("rc:v:", "rc:c:", "rc:n:", "rc:w:")):
        try:
            return int(raw)
        except (TypeError, ValueError):
            return None
    if key.startswith("rc:e:"):
        return Entry.decode(raw)
    if key.startswith("rc:a:"):
        try:
            return json.loads(raw)
        except (TypeError, ValueError):
            return None
    return raw


def _size_of(value) -> int:
    return value.size if isinstance(value, Entry) else 64


# --- Stores --------------------------------------------------------------------------------


# KEYS: floors; ARGV: milliseconds to keep them, then each key's value (zero-padded digits,
# so comparing strings compares numbers).
_RAISE_FLOORS = """
for i, key in ipairs(KEYS) do
  local value = ARGV[i + 1]
  local current = redis.call('GET', key)
  if not current or current < value then
    redis.call('SET', key, value, 'PX', ARGV[1])
  else
    redis.call('PEXPIRE', key, ARGV[1])
  end
end
return 1
"""


class RedisStore:
    """The Redis behind django-redis, spoken to directly (bytes in, bytes out), with the
    per-process near copy of versions, copies and vouchers in front."""

    def __init__(self, backend):
        self.backend = backend
        self.breaker = getattr(backend, "breaker", None)
        self._near = PerProcess(self._build_near)
        self._raise_script = None

    def _redis(self):
        return self.backend.client.get_client(write=True)

    def _raw(self, key: str) -> bytes:
        return self.backend.make_key(key).encode()

    def _build_near(self):
        max_bytes = settings.RESPONSE_CACHE_NEAR_BYTES
        if not max_bytes:
            return None
        pool = self._redis().connection_pool

        def connect():
            # RESP2: the invalidations come as plain pub/sub replies this code reads itself.
            conn = pool.connection_class(**{**pool.connection_kwargs, "protocol": 2})
            conn.connect()
            return conn

        prefixes = [self._raw(p) for p in ("rc:v:", "rc:c:", "rc:e:", "rc:a:", "rc:n:", "rc:w:")]
        return NearCache(
            connect,
            prefixes=prefixes,
            max_bytes=max_bytes,
            size_of=_size_of,
            healthy=lambda: self.breaker is None or not self.breaker.is_down,
            on_failure=lambda exc: self._failed("near", exc),
            generation=redis_ha.generation,
        )

    @property
    def near(self) -> NearCache | None:
        return self._near.get()

    def reset_near(self) -> None:
        self._near.reset()

    def _allowed(self, operation: str) -> bool:
        if self.breaker is None or self.breaker.allow():
            return True
        self.breaker.record_skip(operation)
        return False

    def _failed(self, operation: str, exc) -> None:
        near = self._near.get() if operation != "near" else None
        if near is not None:
            near.clear()
        if self.breaker is not None:
            self.breaker.record_failure(operation, exc)

    def _succeeded(self) -> None:
        if self.breaker is not None:
            self.breaker.record_success()

    def get_many(self, keys: Iterable[str]) -> dict:
        keys = list(dict.fromkeys(keys))
        found, todo = {}, []
        near = self.near
        if self.breaker is not None and self.breaker.is_down:
            # A write that could not reach Redis may be missing from the near copy too.
            near = None
        if near is not None:
            near.drain()
            for key in keys:
                hit, value = near.get(self._raw(key))
                if not hit:
                    todo.append(key)
                elif value is not None:
                    found[key] = value
        else:
            todo = keys
        if not todo or not self._allowed("get_many"):
            return found
        filling = near is not None and near.begin_fill()
        fetched = {}
        try:
            raws = [self._raw(key) for key in todo]
            try:
                values = self._redis().mget(raws)
            except UNAVAILABLE_ERRORS as exc:
                self._failed("get_many", exc)
                return found
            self._succeeded()
            for key, raw_key, raw in zip(todo, raws, values, strict=True):
                value = _decode(key, raw)
                fetched[raw_key] = value  # None too: absence is kept until somebody writes
                if value is not None:
                    found[key] = value
            if filling:
                near.drain()
        finally:
            if filling:
                near.end_fill(fetched)
        return found

    def set_many(self, values: dict[str, bytes], *, timeout: float, only_new=False) -> list:
        """Write each value; with only_new, keep existing ones (SET NX). Returns what was set."""
        if not values or not self._allowed("set"):
            return []
        raws = {self._raw(key): value for key, value in values.items()}
        near = self.near
        if near is not None:
            near.forget(raws)
        try:
            pipe = self._redis().pipeline(transaction=False)
            for raw_key, value in raws.items():
                pipe.set(raw_key, value, px=max(int(timeout * 1000), 1), nx=only_new)
            results = pipe.execute()
        except UNAVAILABLE_ERRORS as exc:
            self._failed("set", exc)
            return []
        self._succeeded()
        return [key for key, ok in zip(values, results, strict=True) if ok]

    def raise_floors(self, values: dict[str, int], *, timeout: float) -> None:
        """Set each key to its value unless it holds a higher one (in one script, so two
        writers never lower a floor), and keep it `timeout` seconds more."""
        if not values or not self._allowed("set"):
            return
        raws = {self._raw(key): replicas.encode_lsn(value) for key, value in values.items()}
        if self.near is not None:
            self.near.forget(raws)
        try:
            if self._raise_script is None:
                self._raise_script = self._redis().register_script(_RAISE_FLOORS)
            self._raise_script(keys=list(raws), args=[max(int(timeout * 1000), 1), *raws.values()])
        except UNAVAILABLE_ERRORS as exc:
            self._failed("set", exc)
            return
        self._succeeded()

    def delete(self, key: str) -> None:
        if not self._allowed("delete"):
            return
        raw = self._raw(key)
        if self.near is not None:
            self.near.forget([raw])
        try:
            self._redis().delete(raw)
        except UNAVAILABLE_ERRORS as exc:
            self._failed("delete", exc)

    def exists(self, key: str) -> bool:
        if not self._allowed("has_key"):
            return False
        try:
            return bool(self._redis().exists(self._raw(key)))
        except UNAVAILABLE_ERRORS as exc:
            self._failed("has_key", exc)
            return False

    def available(self) -> bool:
        return cache_is_available(self.backend)

    def lock(self, digest: str) -> bool:
        return bool(self.set_many({_lock_key(digest): b"1"}, timeout=LOCK_SECONDS, only_new=True))

    def locked(self, digest: str) -> bool:
        return self.exists(_lock_key(digest))

    def unlock(self, digest: str) -> None:
        self.delete(_lock_key(digest))


class DjangoStore:
    """Any other Django cache (the embedded default's file cache; locmem in one process)."""

    near = None

    def __init__(self, backend):
        self.backend = backend

    def reset_near(self) -> None:
        pass

    def get_many(self, keys: Iterable[str]) -> dict:
        found = self.backend.get_many(list(dict.fromkeys(keys)))
        decoded = {key: _decode(key, raw) for key, raw in found.items()}
        return {key: value for key, value in decoded.items() if value is not None}

    def set_many(self, values: dict[str, bytes], *, timeout: float, only_new=False) -> list:
        done = []
        for key, value in values.items():
            if only_new:
                if self.backend.add(key, value, timeout=timeout):
                    done.append(key)
            else:
                self.backend.set(key, value, timeout=timeout)
                done.append(key)
        return done

    def raise_floors(self, values: dict[str, int], *, timeout: float) -> None:
        # Read, then write: two processes may race here; replicas require Redis (settings).
        current = self.get_many(values)
        for key, value in values.items():
            self.backend.set(key, max(value, current.get(key) or 0), timeout=timeout)

    def delete(self, key: str) -> None:
        self.backend.delete(key)

    def available(self) -> bool:
        return cache_is_available(self.backend)

    # The file cache's `add` is a check-then-write that two workers can both win, so its
    # lock is a file created with O_EXCL next to the cache's own files (which `clear()` and
    # culling leave alone).

    def _lock_file(self, digest: str) -> str | None:
        if not isinstance(self.backend, FileBasedCache):
            return None
        return os.path.join(self.backend._dir, f"{digest}.lock")

    def lock(self, digest: str) -> bool:
        path = self._lock_file(digest)
        if path is None:
            return bool(self.backend.add(_lock_key(digest), 1, timeout=LOCK_SECONDS))
        for _ in range(3):
            try:
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                return True
            except FileNotFoundError:  # the cache's directory is made on its first write
                os.makedirs(os.path.dirname(path), exist_ok=True)
            except FileExistsError:
                with contextlib.suppress(FileNotFoundError):
                    if time.time() - os.path.getmtime(path) < LOCK_SECONDS:
                        return False
                    os.unlink(path)  # abandoned by a worker that died: take it over
            except OSError:
                return False
        return False

    def locked(self, digest: str) -> bool:
        path = self._lock_file(digest)
        return self.backend.has_key(_lock_key(digest)) if path is None else os.path.exists(path)

    def unlock(self, digest: str) -> None:
        path = self._lock_file(digest)
        if path is None:
            self.backend.delete(_lock_key(digest))
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


_stores: dict[tuple, object] = {}
_stores_lock = threading.Lock()


def store():
    """The store for the default cache: one per process and cache configuration, shared by
    threads (Django builds a cache object per thread; the near copy must be one)."""
    config = settings.CACHES["default"]
    key = (
        config["BACKEND"],
        str(config.get("LOCATION")),
        config.get("KEY_PREFIX", ""),
        str(config.get("OPTIONS", {}).get("SENTINELS")),
    )
    found = _stores.get(key)
    if found is None:
        with _stores_lock:
            found = _stores.get(key)
            if found is None:
                backend = caches["default"]
                is_redis = hasattr(getattr(backend, "client", None), "get_client")
                found = RedisStore(backend) if is_redis else DjangoStore(backend)
                _stores[key] = found
    return found


def clear_near_copies() -> None:
    """Empty this process's near copies (tests, after flushing the cache)."""
    for found in list(_stores.values()):
        near = found.near
        if near is not None:
            near.clear()


# --- Namespaces ----------------------------------------------------------------------------


def versions(namespaces: Iterable[str], *, counters: Iterable[str] = ()) -> tuple[dict, dict]:
    """({namespace: version}, {namespace: counter version}), creating missing ones; empty
    when the cache is down."""
    plain, counted, _ = _versions(namespaces, counters)
    return plain, counted


def _versions(namespaces, counters, floors=()) -> tuple[dict, dict, int]:
    """versions(), and in the same round trip the highest floor of the namespaces `floors`
    (0 when none was left)."""
    namespaces, counters = list(dict.fromkeys(namespaces)), list(dict.fromkeys(counters))
    keys = {_version_key(ns): ("v", ns) for ns in namespaces}
    keys.update({_counter_key(ns): ("c", ns) for ns in counters})
    floor_keys = [_floor_key(ns) for ns in dict.fromkeys(floors)]
    found = store().get_many([*keys, *floor_keys])
    floor = max((found.pop(key, 0) for key in floor_keys), default=0)
    missing = [key for key in keys if key not in found]
    if missing and store().available():
        # Whoever adds first wins; everybody then reads the winner's.
        store().set_many(
            {key: str(new_version()).encode() for key in missing},
            timeout=VERSION_TTL,
            only_new=True,
        )
        found.update(store().get_many(missing))
    plain, counted = {}, {}
    for key, value in found.items():
        kind, ns = keys[key]
        (plain if kind == "v" else counted)[ns] = value
    return plain, counted, floor


def fill_floor(namespaces: Iterable[str]) -> int:
    """The floor a fill of a copy depending on `namespaces` must read at (0: any replica).
    Read after the versions the copy records, so it covers every write they reflect."""
    if not replicas.enabled():
        return 0
    return _versions((), (), floors=namespaces)[2]


_lost_lock = threading.Lock()
_lost_bump = False  # a bump that could not reach the cache, replayed as a bump of the epoch


def lost_bump_pending() -> bool:
    return _lost_bump


def _retire_floors(namespaces: list[str]) -> None:
    """With replicas: the primary's position now (after the write's commit) becomes these
    namespaces' floor before their versions move, so a fill that sees a new version also sees
    a floor at least this high (a fill reads the floor after the version)."""
    if replicas.enabled():
        floors = dict.fromkeys(map(_floor_key, namespaces), replicas.primary_lsn())
        store().raise_floors(floors, timeout=replicas.floor_seconds())


def _write_versions(namespaces: list[str], counters: list[str]) -> None:
    """New plain versions for `namespaces` and counter versions for `counters`, in one
    round trip."""
    global _lost_bump
    if not namespaces and not counters:
        return
    _replay_lost_bump()
    _retire_floors([*namespaces, *counters])
    keys = [*map(_version_key, namespaces), *map(_counter_key, counters)]
    version = str(new_version()).encode()
    store().set_many(dict.fromkeys(keys, version), timeout=VERSION_TTL)
    if not store().available():
        with _lost_lock:
            if not _lost_bump:
                log.warning("Cache unreachable during an invalidation; every copy is retired")
            _lost_bump = True


def _replay_lost_bump() -> None:
    global _lost_bump
    if not _lost_bump or not store().available():
        return
    with _lost_lock:
        if not _lost_bump:
            return
        _lost_bump = False
    _retire_floors([EPOCH_NS])
    epoch = {_version_key(EPOCH_NS): str(new_version()).encode()}
    if not store().set_many(epoch, timeout=VERSION_TTL):
        with _lost_lock:  # failed again (a master refusing writes, say): next time
            _lost_bump = True


def bump(namespaces: Iterable[str], *, counters: Iterable[str] = ()) -> None:
    """Retire every copy that depends on `namespaces`, here and at the edge; the counters
    `counters` show moved, so their copies may lag COUNTER_STALENESS seconds (with 0, they
    are retired too). One cache round trip for both."""
    counters = list(dict.fromkeys(counters))
    lagging = settings.COUNTER_STALENESS > 0
    retired = list(dict.fromkeys([*namespaces, *(() if lagging else counters)]))
    _write_versions(retired, counters if lagging else [])
    # Whether or not the cache answered: the edge's copies are the edge's.
    edge.purge([ns for ns in retired if not _users_own(ns)], everything=EPOCH_NS)


def _users_own(namespace: str) -> bool:
    """A user's own namespaces (user:<id>, user:<id>:activity): only ever in signed-in
    copies, which the edge never keeps."""
    parts = namespace.split(":")
    return parts[0] == "user" and len(parts) in (2, 3) and parts[1].isdigit()


def namespaced_key(namespace: str, *parts) -> str:
    """A key in `namespace` that dies with the next bump of that namespace or of the epoch."""
    plain, _ = versions([EPOCH_NS, namespace])
    epoch, version = plain.get(EPOCH_NS, 0), plain.get(namespace, 0)
    return ":".join(["rc:data", f"e{epoch}", namespace, f"v{version}", *map(str, parts)])


def cached_value(namespace: str, *parts, ttl: int, compute: Callable[[], object]):
    """Read-through for plain data under `namespaced_key` (pass-through when disabled)."""
    if not settings.CACHE_ENABLED:
        return compute()
    backend = caches["default"]
    key = namespaced_key(namespace, *parts)
    missing = object()
    value = backend.get(key, missing)
    if value is missing:
        with replicas.filling(fill_floor([EPOCH_NS, namespace])):
            value = compute()
        backend.set(key, value, timeout=ttl)
    return value


# --- Statistics ----------------------------------------------------------------------------

_stats_lock = threading.Lock()
_stats: Counter = Counter()


def _count(label: str, outcome: str) -> None:
    with _stats_lock:
        _stats[(label, outcome)] += 1
    metrics.record_cache(label, outcome != "miss")


def response_cache_stats() -> dict[tuple[str, str], int]:
    """This process's {(namespace label, hit|stale|waited|lagging|miss): count}."""
    with _stats_lock:
        return dict(_stats)


# --- Request keys --------------------------------------------------------------------------


def credential_of(cookies: dict, authorization: str) -> str | None:
    """A digest of what authenticates a request, or None for an anonymous one."""
    session = cookies.get(settings.SESSION_COOKIE_NAME, "")
    if not authorization and not session:
        return None
    csrf = cookies.get(settings.CSRF_COOKIE_NAME, "")
    return hashlib.sha256(f"{authorization}\0{session}\0{csrf}".encode()).hexdigest()


def normalised_query(raw: str) -> str:
    """The query string with its parameters sorted by name, compared byte for byte (two
    spellings of one value only cost a miss; two values never share a copy)."""
    if not raw:
        return ""
    pairs = raw.split("&")
    return "&".join(sorted(pairs, key=lambda pair: pair.split("=", 1)[0]))


def copy_digest(*, scheme, host, path, query, accept, variant) -> str:
    raw = "\n".join(["GET", scheme, host, path, normalised_query(query), accept, variant])
    return hashlib.sha256(raw.encode("utf-8", "surrogateescape")).hexdigest()[:40]


PUBLIC = "public"  # the variant every anonymous request reads


def _credential(request) -> str | None:
    return credential_of(request.COOKIES, request.META.get("HTTP_AUTHORIZATION", ""))


def _request_digest(request, variant: str) -> str:
    meta = request.META
    return copy_digest(
        scheme=request.scheme,
        host=request.get_host(),
        path=meta.get("SCRIPT_NAME", "") + meta.get("PATH_INFO", ""),
        query=meta.get("QUERY_STRING", ""),
        accept=meta.get("HTTP_ACCEPT", ""),
        variant=variant,
    )


# --- Validity ------------------------------------------------------------------------------

FRESH, LAGGING, EXPIRED, INVALID = "fresh", "lagging", "expired", "invalid"


def judge(entry: Entry, static: Iterable[str], plain: dict, counted: dict, *, now: float,
          wrote_at: float = 0.0) -> str:  # fmt: skip
    """FRESH, LAGGING (counters moved less than COUNTER_STALENESS ago: servable), EXPIRED
    (past its TTL, or its counters lag longer: servable while one request recomputes) or
    INVALID (content changed, or the reader wrote since the copy was made)."""
    deps = entry.deps
    for ns in static:
        if ns not in deps:
            return INVALID
    for ns, version in deps.items():
        if version is None or plain.get(ns) != version:
            return INVALID
    lagging = any(counted.get(ns) != version for ns, version in entry.cdeps.items())
    if lagging and wrote_at > entry.created:
        return INVALID  # the reader's own write is not in it: read-your-writes
    if now >= entry.soft:
        return EXPIRED
    if lagging:
        return LAGGING if now < entry.created + settings.COUNTER_STALENESS else EXPIRED
    return FRESH


def _edge_seconds(entry: Entry, *, now: float, counters_at: float) -> float:
    """How long a shared cache may keep this copy: while this cache would still answer it
    without recomputing. That is its TTL and, for the counters it shows (known current at
    `counters_at`), COUNTER_STALENESS; content changes purge the edge (bump)."""
    end = entry.soft
    if settings.COUNTER_STALENESS > 0:
        end = min(end, counters_at + settings.COUNTER_STALENESS)
    return end - now


def _record_lag(entry: Entry, now: float) -> None:
    metrics.record_counter_lag(max(now - entry.created, 0.0))


# --- Vouchers ------------------------------------------------------------------------------
# Which credentials a copy made for everyone may answer. One per credential digest, not per
# URL. It trusts the user's namespace version only once read before a view ran: the first
# request learns whose credential it is, the next one vouches; a write to the user
# (password, deactivation, token deleted, logout, an install) retires it. Its version also
# says when the user last wrote: a copy older than that, whose counters moved, is not theirs.


def _vouched(voucher: dict | None, plain: dict, now: float) -> bool:
    if voucher is None or now >= voucher["soft"]:
        return False
    ns = voucher["ns"]
    return ns is None or (voucher["version"] is not None and plain.get(ns) == voucher["version"])


def _voucher_namespaces(voucher: dict | None) -> list[str]:
    voucher = voucher or {}
    return [ns for ns in (voucher.get("ns"), voucher.get("activity")) if ns]


def _wrote_at(voucher: dict | None, plain: dict) -> float:
    """When the voucher's user last wrote (their activity namespace's current version)."""
    activity = (voucher or {}).get("activity")
    return version_time(plain.get(activity)) if activity else 0.0


def _vouch(request, response, credential: str, voucher: dict | None, plain) -> None:
    if response.status_code != 200:
        return  # e.g. a 401 for a revoked token: nothing to vouch for
    user = getattr(request, "user", None)  # DRF sets the user it authenticated on it
    ns = version = activity = None
    if user is not None and user.is_authenticated:
        ns, activity = registry.user_namespace(user), registry.activity_namespace(user)
        if voucher and voucher["ns"] == ns:
            version = plain.get(ns)  # read before the view ran: trustworthy
    # A credential that authenticates nobody (a stale session cookie) is an anonymous one.
    value = {"ns": ns, "version": version, "activity": activity, "soft": _now() + VOUCHER_SECONDS}
    raw = json.dumps(value).encode()
    store().set_many({_voucher_key(credential): raw}, timeout=VERSION_TTL)


# --- Policies ------------------------------------------------------------------------------


def _view_data(response):
    """What a view rendered its response from: a DRF Response's data, a TemplateResponse's
    context."""
    if hasattr(response, "data"):
        return response.data
    data = getattr(response, "context_data", None)
    if data is None:
        raise ImproperlyConfigured(
            "a CachePolicy with follows= needs the view to return a TemplateResponse or a "
            "DRF Response (their data names what the copy follows)"
        )
    return data


def _is_drf_view(view) -> bool:
    from rest_framework.views import APIView

    cls = view if isinstance(view, type) else getattr(view, "cls", None)
    return isinstance(cls, type) and issubclass(cls, APIView)


def user_ns(user_id: int) -> str:
    """A user's own data and credentials: what their signed-in copies and vouchers follow."""
    return f"user:{user_id}"


def user_activity_ns(user_id: int) -> str:
    """What a user's own counter writes (installs, reviews) change in their signed-in copies."""
    return f"user:{user_id}:activity"


class Registry:
    """What the apps tell this module: the labels of their namespaces (the first part of
    a namespace, used for statistics; "user" is this module's) and how the wide listing
    namespace is called."""

    labels: tuple[str, ...] = ("user",)
    default_namespace: dict[str, str] = {}

    @staticmethod
    def user_namespace(user) -> str:
        return user_ns(user.pk)

    @staticmethod
    def activity_namespace(user) -> str:
        return user_activity_ns(user.pk)


registry = Registry()


def configure(*, labels, default_namespace) -> None:
    registry.labels = tuple(dict.fromkeys(["user", *labels]))
    registry.default_namespace = dict(default_namespace)


# --- Credentials: a credential that stops being valid stops matching its user's copies -----


def _retire_user(user_id) -> None:
    transaction.on_commit(lambda: bump([user_ns(user_id)]))


def _user_saved(sender, instance, **kwargs):
    _retire_user(instance.pk)  # a password, a deactivation, a rename


def _user_gone(sender, instance, **kwargs):
    _retire_user(instance.pk)


def _user_logged_out(sender, request, user, **kwargs):
    if user is not None:
        _retire_user(user.pk)


def _token_changed(sender, instance, **kwargs):
    _retire_user(instance.user_id)


def connect_credential_receivers() -> None:
    """Users and API tokens (connected in aios.apps)."""
    from django.apps import apps
    from django.contrib.auth import get_user_model
    from django.contrib.auth.signals import user_logged_out
    from django.db.models.signals import post_delete, post_save

    user_model = get_user_model()
    post_save.connect(_user_saved, sender=user_model, dispatch_uid="aios-cache-user-save")
    post_delete.connect(_user_gone, sender=user_model, dispatch_uid="aios-cache-user-del")
    user_logged_out.connect(_user_logged_out, dispatch_uid="aios-cache-logout")
    if apps.is_installed("rest_framework.authtoken"):
        token = apps.get_model("authtoken", "Token")
        post_save.connect(_token_changed, sender=token, dispatch_uid="aios-cache-token-save")
        post_delete.connect(_token_changed, sender=token, dispatch_uid="aios-cache-token-del")


@dataclasses.dataclass(slots=True)
class _Lookup:
    """What one request learned about its copy before deciding to answer or recompute."""

    now: float
    credential: str | None
    own: bool  # the copy is this credential's own
    vouch: bool  # a signed-in request to a copy made for everyone
    digest: str
    static: list
    deps: list
    entry: "Entry | None"
    voucher: dict | None
    plain: dict
    trusted: bool
    wrote_at: float
    state: str


class CachePolicy:
    """How one GET view's finished response is cached.

    `namespace`: a label ("lists"), a namespace with URL kwargs ("agent:{pk}"), or a bare
    label whose ids come from `follows`. `depends_on`: more namespaces, as format strings or
    callables (request, **kwargs). `scope`: a callable (request, **kwargs) giving the
    namespaces a listing depends on. `follows`: a callable given what the view rendered (a
    TemplateResponse's context, a DRF Response's data) returning the namespaces of the rows
    it shows, known only once the view ran (an agent found by slug, the agents on a page).
    `per_user`: signed-in visitors each get their own copy (anonymous ones share one);
    otherwise the response is the same for everyone. `signed_in_copies=False` (with
    `per_user`): signed-in visitors get no copy at all, for responses a visitor seldom asks
    for twice (storing a copy costs more than the view).
    """

    def __init__(
        self,
        namespace: str,
        *,
        ttl: int,
        per_user: bool = False,
        depends_on: Iterable[str | Callable] = (),
        scope: Callable | None = None,
        follows: Callable | None = None,
        stale_seconds: int = STALE_SECONDS,
        vary_on_accept: bool | None = None,
        follows_activity: bool = True,
        signed_in_copies: bool = True,
    ):
        label = namespace.split(":", 1)[0]
        if registry.labels and label not in registry.labels:
            raise ImproperlyConfigured(f"cache namespace {namespace!r}: one of {registry.labels}")
        if label == "user" and not per_user:
            raise ImproperlyConfigured("user data is cached per user: pass per_user=True")
        if not signed_in_copies and not per_user:
            raise ImproperlyConfigured("signed_in_copies=False needs per_user=True")
        if scope is not None and ":" in namespace:
            raise ImproperlyConfigured("scope= narrows a label: namespace must be a bare label")
        self.namespace = namespace
        self.scope = scope
        self.follows = follows
        self.label = label
        self.ttl = ttl
        self.per_user = per_user
        self.depends_on = tuple(depends_on)
        self.stale_seconds = stale_seconds
        self.vary_on_accept = vary_on_accept
        # A signed-in copy also follows what its user's own counter writes (installs,
        # reviews) change, unless it shows none of that (a knowledge base).
        self.follows_activity = follows_activity
        self.signed_in_copies = signed_in_copies

    def __call__(self, view):
        """Decorate a function view or an `as_view()` result."""
        vary_on_accept = _is_drf_view(view) if self.vary_on_accept is None else self.vary_on_accept

        @functools.wraps(view)
        def cached_view(request, *args, **kwargs):
            return self.serve(
                request,
                lambda: view(request, *args, **kwargs),
                kwargs,
                vary_on_accept=vary_on_accept,
            )

        return cached_view

    def static_namespaces(self, request, view_kwargs) -> list[str]:
        namespaces = [EPOCH_NS]
        if ":" in self.namespace:
            namespaces.append(self.namespace.format(**view_kwargs))
        elif self.scope is not None:
            namespaces.extend(self.scope(request, **view_kwargs))
        elif self.namespace in registry.default_namespace:
            namespaces.append(registry.default_namespace[self.namespace])
        for dep in self.depends_on:
            if callable(dep):
                namespaces.extend(dep(request, **view_kwargs))
            else:
                namespaces.append(dep.format(**view_kwargs))
        return namespaces

    def serve(self, request: HttpRequest, call_view, view_kwargs, *, vary_on_accept: bool):
        if (
            not settings.CACHE_ENABLED
            or request.method not in ("GET", "HEAD")
            or MESSAGES_COOKIE in request.COOKIES
        ):
            return call_view()
        if not self.signed_in_copies and _credential(request) is not None:
            return call_view()  # not a cached read: no lookup, no count
        _replay_lost_bump()
        look = self._look_up(request, view_kwargs)
        if look.state in (FRESH, LAGGING):
            if look.state == LAGGING:
                _record_lag(look.entry, look.now)
            counters_at = look.now if look.state == FRESH else look.entry.created
            shared = _edge_seconds(look.entry, now=look.now, counters_at=counters_at)
            return self._hit(request, look.entry, look.credential, vary_on_accept, "hit", shared)
        locked, copy, how = self._take_turn(look)
        if copy is not None:
            # An expired copy answered while another request recomputes: not for the edge.
            shared = 0.0
            if how == "waited":
                shared = _edge_seconds(copy, now=_now(), counters_at=copy.created)
            return self._hit(request, copy, look.credential, vary_on_accept, how, shared)
        return self._recompute(request, call_view, look, locked, vary_on_accept)

    def _look_up(self, request, view_kwargs) -> "_Lookup":
        """One round trip for the copy, its namespaces' versions and (for a signed-in
        request to a copy made for everyone) the credential's voucher; then the verdict."""
        now = _now()
        credential = _credential(request)
        own = credential is not None and self.per_user
        digest = _request_digest(request, f"credential:{credential}" if own else PUBLIC)
        static = self.static_namespaces(request, view_kwargs)
        # A copy made for everyone answers a signed-in request only while its credential is
        # known to authenticate: a revoked token gets its 401, never the public copy.
        vouch = credential is not None and not self.per_user
        keys = [_entry_key(digest), *map(_version_key, static)]
        if vouch:
            keys.append(_voucher_key(credential))
        found = store().get_many(keys)
        entry = found.get(keys[0])
        voucher = found.get(_voucher_key(credential)) if vouch else None
        if entry is not None and vouch and not entry.everyone:
            entry = None
        deps = [*static, *(entry.deps if entry else ())]
        deps += _voucher_namespaces(voucher)
        plain, counted = versions(deps, counters=entry.cdeps if entry else ())
        trusted = not vouch or _vouched(voucher, plain, now)
        wrote_at = _wrote_at(voucher, plain) if vouch and trusted else 0.0
        state = INVALID
        if entry is not None and trusted:
            state = judge(entry, static, plain, counted, now=now, wrote_at=wrote_at)
        return _Lookup(
            now, credential, own, vouch, digest, static, deps, entry, voucher, plain, trusted,
            wrote_at, state,
        )  # fmt: skip

    def _take_turn(self, look: "_Lookup") -> tuple[bool, "Entry | None", str]:
        """Who recomputes a missing or old copy: (this request holds the lock, a copy to
        answer instead, how it was got). An expired copy goes on answering everybody but
        the lock holder; without one, the others wait a little for the holder's."""
        digest, locked = look.digest, False
        if look.state == EXPIRED and not look.own:
            if not store().lock(digest):
                return False, look.entry, "stale"
            locked = True
        elif look.trusted and not look.own and look.plain:
            locked = store().lock(digest)
            if not locked and store().available():
                waited = self._wait(digest, look.static, look.plain, look.wrote_at)
                if waited is not None:
                    return False, waited, "waited"
        if locked:
            # The previous holder may have stored a copy between our read and our lock.
            again = self._fresh_copy(digest, look.static, look.wrote_at)
            if again is not None:
                store().unlock(digest)
                return False, again, "waited"
        return locked, None, ""

    def _recompute(self, request, call_view, look: "_Lookup", locked: bool, vary_on_accept):
        """Run the view and keep its response as the new copy (StoreCopyMiddleware stores it
        late when the request asks so)."""
        credential, plain, pending = look.credential, look.plain, None
        try:
            # Counter versions are read before the view runs: a write during it makes the
            # copy lag (recomputed later), never look newer than it is. With replicas, the
            # view reads where every write its versions reflect has been replayed.
            counters = [ns for ns in look.deps if ns != EPOCH_NS]
            _, counted, floor = _versions(
                (), counters, floors=look.deps if replicas.enabled() else ()
            )
            with replicas.filling(floor):
                response = call_view()
                followed = ()
                if self.follows is not None and response.status_code == 200:
                    followed = self.follows(_view_data(response))
                if hasattr(response, "render") and callable(response.render):
                    response = response.render()  # DRF / TemplateResponse: the bytes to keep
            if look.vouch and not look.trusted:
                _vouch(request, response, credential, look.voucher, plain)
            deps = [*look.static, *followed]
            entry = self._entry(
                request, response, deps, plain, counted, credential, look.now, vary_on_accept
            )
            if entry is not None and plain:
                timeout = self.ttl + (self.stale_seconds if not look.own else 0)
                digest = look.digest
                pending = (_entry_key(digest), entry, timeout, digest if locked else None)
                if not request.__dict__.get("_aios_store_late"):
                    _store(*pending)
                    pending = None
        finally:
            # The lock is held until the copy is stored: waiters poll for it.
            if locked and pending is None:
                store().unlock(look.digest)
        _count(self.label, "miss")
        if entry is None:
            return response
        now = _now()
        shared = 0.0
        if now - look.now <= edge.SLOW_SECONDS:
            shared = _edge_seconds(entry, now=now, counters_at=entry.created)
        response = self._respond(request, entry, credential, vary_on_accept, shared)
        response._aios_pending_copy = pending  # StoreCopyMiddleware writes it
        return response

    def _fresh_copy(self, digest, static, wrote_at):
        entry = store().get_many([_entry_key(digest)]).get(_entry_key(digest))
        if entry is None:
            return None
        plain, counted = versions([*static, *entry.deps], counters=entry.cdeps)
        state = judge(entry, static, plain, counted, now=_now(), wrote_at=wrote_at)
        return entry if state in (FRESH, LAGGING) else None

    def _wait(self, digest: str, static, plain, wrote_at):
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
            held = store().locked(digest)  # before the read: a holder stores, then unlocks
            entry = self._fresh_copy(digest, static, wrote_at)
            if entry is not None:
                return entry
            if not held:
                return None  # the holder finished without a usable copy: compute
        return None

    def _hit(self, request, entry, credential, vary_on_accept, outcome, edge_seconds):
        _count(self.label, outcome)
        return self._respond(request, entry, credential, vary_on_accept, edge_seconds)

    # -- building and answering copies --

    def _storable(self, request, response, credential) -> bool:
        if response.status_code != 200 or response.streaming or response.cookies:
            return False
        session = getattr(request, "session", None)
        if session is not None and session.modified:
            return False  # SessionMiddleware will set a cookie
        cache_control = {
            directive.split("=", 1)[0].strip().lower()
            for directive in cc_delim_re.split(response.get("Cache-Control", ""))
        }
        if cache_control & {"private", "no-store", "no-cache"} or response.get("Vary") == "*":
            return False
        if request.META.get("CSRF_COOKIE_NEEDS_UPDATE"):
            # A CSRF token on the page: only ever the signed-in user's own copy, and only
            # when the token matches the CSRF cookie that is part of the copy's key.
            if credential is None or not self.per_user:
                return False
            sent = request.COOKIES.get(settings.CSRF_COOKIE_NAME)
            if not sent or sent != request.META.get("CSRF_COOKIE"):
                return False
        # A page for everyone is only ever taken from an anonymous request.
        is_html = response.get("Content-Type", "").startswith("text/html")
        return not (credential is not None and not self.per_user and is_html)

    def _entry(
        self, request, response, static, plain, counted, credential, now, vary_on_accept
    ) -> Entry | None:
        if not self._storable(request, response, credential):
            return None
        discovered = set(static)
        if credential is not None and self.per_user:
            user = getattr(request, "user", None)
            if user is not None and user.is_authenticated:
                discovered.add(registry.user_namespace(user))
                if self.follows_activity:
                    discovered.add(registry.activity_namespace(user))
        body = response.content
        match = getattr(request, "resolver_match", None)
        headers = [(k, v) for k, v in response.items() if k.lower() not in _UNSTORED_HEADERS]
        entry = Entry(
            deps={ns: plain.get(ns) for ns in sorted(discovered)},
            cdeps={ns: counted.get(ns) for ns in sorted(discovered) if ns != EPOCH_NS},
            created=now,
            soft=now + self.ttl,
            status=response.status_code,
            headers=headers,
            etag=f'"{hashlib.blake2b(body, digest_size=16).hexdigest()}"',
            body=body,
            codings={},
            label=self.label,
            view=match.view_name if match is not None else "<unresolved>",
            everyone=not self.per_user,
            size=len(body),
        )
        # Compressed once here, so hits never compress; never what carries a secret (a
        # signed-in browser's page: compression.carries_secrets pads those per response).
        if (
            len(body) >= compression.MIN_SIZE
            and compression.is_compressible(response)
            and not compression.carries_secrets(request, response)
        ):
            for coding in ("br", "gzip"):
                packed = compression.compress(body, coding, stored=True)
                if len(packed) < len(body):
                    entry.codings[coding] = packed
        vary = ["Cookie", "Authorization"] + (["Accept"] if vary_on_accept else [])
        entry.headers = _with_vary(headers, vary + (["Accept-Encoding"] if entry.codings else []))
        return entry

    def _respond(self, request, entry: Entry, credential, vary_on_accept, edge_seconds):
        status, headers, body = answer(
            entry,
            accept_encoding=request.META.get("HTTP_ACCEPT_ENCODING", ""),
            if_none_match=request.META.get("HTTP_IF_NONE_MATCH", ""),
            signed_in=credential is not None,
            ttl=self.ttl,
            edge_seconds=edge_seconds,
        )
        response = HttpResponseNotModified() if status == 304 else HttpResponse(body, status=status)
        for header, value in headers:
            response.headers[header] = value
        return response


def _with_vary(headers: list, extra: list[str]) -> list:
    """`headers` with one Vary header naming what it named and `extra`."""
    named = []
    for header, value in headers:
        if header.lower() == "vary":
            named += [part.strip() for part in value.split(",")]
    seen, merged = set(), []
    for value in [*named, *extra]:
        if value and value.lower() not in seen:
            seen.add(value.lower())
            merged.append(value)
    kept = [(h, v) for h, v in headers if h.lower() != "vary"]
    return kept + ([("Vary", ", ".join(merged))] if merged else [])


def answer(entry: Entry, *, accept_encoding, if_none_match, signed_in, ttl=None, edge_seconds=0.0):
    """(status, headers, body) for a copy: the stored encoding the client accepts, 304 when
    its ETag matches, browser caching by who asks; an anonymous answer may be kept
    `edge_seconds` by a shared cache (aios.edge)."""
    coding = None
    if entry.codings:
        coding = compression.choose_coding(accept_encoding)
        coding = coding if coding in entry.codings else None
    etag = compression.etag_for_coding(entry.etag, coding)
    headers = [*entry.headers, ("ETag", etag)]
    if signed_in:
        headers.append(("Cache-Control", "private, max-age=0, must-revalidate"))
    else:
        max_age = BROWSER_MAX_AGE if ttl is None else min(ttl, BROWSER_MAX_AGE)
        headers += edge.shared_headers(entry.deps, max_age=max_age, seconds=edge_seconds)
    if compression.etag_matches(if_none_match, etag):
        return 304, [(h, v) for h, v in headers if h.lower() != "content-type"], b""
    if coding:
        headers.append(("Content-Encoding", coding))
        return entry.status, headers, entry.codings[coding]
    return entry.status, headers, entry.body


def _store(key: str, entry: Entry, timeout: float, locked: str | None = None) -> None:
    """Write a copy; then release the recomputation lock `locked` (a digest) if held."""
    try:
        store().set_many({key: entry.encode()}, timeout=timeout)
    finally:
        if locked:
            store().unlock(locked)


class CachedResponseMixin:
    """Response caching for class-based views: `cache_policies` maps a handler ("get") or a
    viewset action ("list", "retrieve") to a `CachePolicy`."""

    cache_policies: dict[str, CachePolicy] = {}

    def cache_policy(self, request) -> CachePolicy | None:
        method = "get" if request.method.lower() == "head" else request.method.lower()
        action_map = getattr(self, "action_map", None)
        name = action_map.get(method) if action_map else method
        return self.cache_policies.get(name) if name else None

    def dispatch(self, request, *args, **kwargs):
        policy = self.cache_policy(request)
        parent = super()
        if policy is None:
            return parent.dispatch(request, *args, **kwargs)
        vary_on_accept = policy.vary_on_accept
        if vary_on_accept is None:
            vary_on_accept = _is_drf_view(type(self))
        return policy.serve(
            request,
            lambda: parent.dispatch(request, *args, **kwargs),
            kwargs,
            vary_on_accept=vary_on_accept,
        )


class StoreCopyMiddleware:
    """Writes a miss's copy once every middleware below has added its headers, so the hit
    path answers with the same security headers. Sits right below the monitoring middleware."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request._aios_store_late = True
        response = self.get_response(request)
        pending = getattr(response, "_aios_pending_copy", None)
        if pending is not None:
            key, entry, timeout, locked = pending
            final = [(k, v) for k, v in response.items() if k.lower() not in _UNSTORED_HEADERS]
            entry.headers = final
            _store(key, entry, timeout, locked)
        return response


# --- The hit path --------------------------------------------------------------------------


_clock = time.monotonic


class _HitBudget:
    """Per process and client address: hits allowed per second before a client's requests go
    through Django, whose throttles then count them."""

    def __init__(self):
        self._lock = threading.Lock()
        self._second = 0
        self._counts: Counter = Counter()

    def allow(self, address: str, limit: int) -> bool:
        second = int(_clock())
        with self._lock:
            if second != self._second:
                self._second = second
                self._counts.clear()
            self._counts[address] += 1
            return self._counts[address] <= limit


def _status_line(status: int) -> str:
    from http import HTTPStatus

    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


class HitPath:
    """WSGI middleware: answers fresh copies before Django sees the request.

    It keeps what Django's stack gave a cached answer: the Host header is checked against
    ALLOWED_HOSTS, plain HTTP goes to Django (which redirects) under SECURE_SSL_REDIRECT,
    the copy's stored security headers, the request id, the request and cache metrics. A
    client past RESPONSE_CACHE_HIT_RATE hits per second in this process goes through
    Django's throttles instead.
    """

    def __init__(self, application):
        self.application = application
        self._budget = _HitBudget()
        self._status_lines: dict[int, str] = {}

    def __call__(self, environ, start_response):
        if settings.RESPONSE_CACHE_HIT_PATH and settings.CACHE_ENABLED:
            start = time.perf_counter()
            try:
                answered = self._answer(environ)
            except Exception:  # the hit path never fails a request
                log.exception("hit path failed; Django answers")
                answered = None
            if answered is not None:
                reporter.ensure_started()  # as the monitoring middleware: the window counts hits
                status, headers, body, entry = answered
                request_id = sane_request_id(environ.get("HTTP_X_REQUEST_ID")) or uuid.uuid4().hex
                headers.append(("X-Request-ID", request_id))
                if status != 304:
                    headers.append(("Content-Length", str(len(body))))
                line = self._status_lines.get(status) or self._status_lines.setdefault(
                    status, _status_line(status)
                )
                start_response(line, headers)
                _count(entry.label, "hit")
                metrics.observe_request(
                    view=entry.view, status=status, seconds=time.perf_counter() - start
                )
                return [] if environ["REQUEST_METHOD"] == "HEAD" else [body]
        return self.application(environ, start_response)

    def _answer(self, environ):
        method = environ.get("REQUEST_METHOD")
        if method not in ("GET", "HEAD"):
            return None
        scheme = _scheme(environ)
        if settings.SECURE_SSL_REDIRECT and scheme != "https":
            return None
        host = _valid_host(environ)
        if host is None:
            return None
        cookies = _cookies(environ.get("HTTP_COOKIE", ""))
        if MESSAGES_COOKIE in cookies:
            return None
        address = environ.get("REMOTE_ADDR", "")
        if not self._budget.allow(address, settings.RESPONSE_CACHE_HIT_RATE):
            return None
        _replay_lost_bump()
        credential = credential_of(cookies, environ.get("HTTP_AUTHORIZATION", ""))
        common = {
            "scheme": scheme,
            "host": host,
            "path": environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""),
            "query": environ.get("QUERY_STRING", ""),
            "accept": environ.get("HTTP_ACCEPT", ""),
        }
        public_key = _entry_key(copy_digest(**common, variant=PUBLIC))
        if credential is None:
            keys = [public_key]
        else:
            own_key = _entry_key(copy_digest(**common, variant=f"credential:{credential}"))
            keys = [own_key, public_key, _voucher_key(credential)]
        found = store().get_many(keys)
        entry, wrote_at = found.get(keys[0]), 0.0
        if credential is not None and entry is None:
            entry, voucher = found.get(public_key), found.get(keys[2])
            if entry is None or not entry.everyone or voucher is None:
                return None
            plain, counted = versions(
                [*entry.deps, *_voucher_namespaces(voucher)], counters=entry.cdeps
            )
            if not _vouched(voucher, plain, _now()):
                return None
            wrote_at = _wrote_at(voucher, plain)
        elif entry is None:
            return None
        else:
            plain, counted = versions(entry.deps, counters=entry.cdeps)
        now = _now()
        state = judge(entry, entry.deps, plain, counted, now=now, wrote_at=wrote_at)
        if state not in (FRESH, LAGGING):
            return None
        if credential is not None and entry.codings == {} and _wants_compression(entry):
            return None  # a signed-in browser's page: Django compresses it with padding
        if state == LAGGING:
            _record_lag(entry, now)
        counters_at = now if state == FRESH else entry.created
        return (
            *answer(
                entry,
                accept_encoding=environ.get("HTTP_ACCEPT_ENCODING", ""),
                if_none_match=environ.get("HTTP_IF_NONE_MATCH", ""),
                signed_in=credential is not None,
                ttl=max(int(entry.soft - entry.created), 0),
                edge_seconds=_edge_seconds(entry, now=now, counters_at=counters_at),
            ),
            entry,
        )


def _wants_compression(entry: Entry) -> bool:
    content_type = next((v for h, v in entry.headers if h.lower() == "content-type"), "")
    return len(entry.body) >= compression.MIN_SIZE and compression.is_compressible_type(
        content_type
    )


def _scheme(environ) -> str:
    header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if header:
        name, secure_value = header
        value = environ.get(name)
        if value is not None:
            return "https" if value.split(",", 1)[0].strip() == secure_value else "http"
    return environ.get("wsgi.url_scheme", "http")


def _valid_host(environ) -> str | None:
    """The Host as Django's get_host() gives it, or None when Django would refuse it."""
    if settings.USE_X_FORWARDED_HOST and "HTTP_X_FORWARDED_HOST" in environ:
        return None  # rare set-up: Django decides
    host = environ.get("HTTP_HOST")
    if not host:  # as Django: the server's name, and its port unless the scheme's default
        host, port = environ.get("SERVER_NAME", ""), str(environ.get("SERVER_PORT", ""))
        if port and port != ("443" if _scheme(environ) == "https" else "80"):
            host = f"{host}:{port}"
    domain, _ = split_domain_port(host)
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    if domain and validate_host(domain, allowed):
        return host
    return None


@functools.lru_cache(maxsize=1024)
def _cookies(header: str) -> dict:
    from django.http.cookie import parse_cookie

    return parse_cookie(header)
