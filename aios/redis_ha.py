"""Redis through Sentinel: every Redis user finds the current master, and a master that takes
over does not bring back cache state its predecessor had retired.

With `REDIS_SENTINELS` and `REDIS_SENTINEL_MASTER` set, the cache (django-redis, with
`SentinelConnectionFactory` below) and `client()` (monitoring) ask Sentinel for the master's
address on every new connection. Only ever the master: a replica lags, and the response
cache needs every reader to see the last bump.

Replication is asynchronous, so a promoted replica may lack the last writes its old master
acknowledged, version bumps among them: copies those bumps retired would be valid again. So a
new connection to a master, before it serves anything, runs `TAKEOVER_SCRIPT`: when the run id
recorded in Redis (`redis:master`, replicated like any key) is not the server's own (a promoted
replica, a server restarted from a snapshot), it gives the keys registered with
`renew_on_takeover` (the response cache's epoch) fresh values and records its run id, in one
atomic step. The process also counts the masters it has met (`generation()`): the near copy,
whose invalidations came from the old master, starts over. docs/caching.md, "Failover".
"""

import logging
import threading
from collections.abc import Callable

import redis
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django_redis import pool as django_redis_pool
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelConnectionPool, SentinelManagedConnection

log = logging.getLogger(__name__)

OWNER_KEY = "redis:master"  # the run id of the master that last renewed the keys below

# KEYS[1]: OWNER_KEY; KEYS[2..n]: keys to renew. ARGV[1]: their lifetime in ms; ARGV[i]: the
# fresh value of KEYS[i]. Answers {run id, 1 when it renewed them}; a replica answers READONLY
# (which redis-py's Sentinel connection takes for "the master moved": it asks again).
TAKEOVER_SCRIPT = """
if not string.find(redis.call('INFO', 'replication'), 'role:master', 1, true) then
  return redis.error_reply('READONLY not the master')
end
local run_id = string.match(redis.call('INFO', 'server'), 'run_id:(%w+)')
if redis.call('GET', KEYS[1]) == run_id then return {run_id, 0} end
for i = 2, #KEYS do redis.call('SET', KEYS[i], ARGV[i], 'PX', ARGV[1]) end
redis.call('SET', KEYS[1], run_id)
return {run_id, 1}
"""

_renewed: dict[str, Callable[[], str]] = {}
_renewed_ttl_ms = 24 * 3600 * 1000


def renew_on_takeover(key: str, fresh: Callable[[], str], *, ttl_seconds: int) -> None:
    """Give the cache key `key` the value `fresh()` whenever a new master takes over."""
    global _renewed_ttl_ms
    _renewed[key] = fresh
    _renewed_ttl_ms = max(_renewed_ttl_ms, ttl_seconds * 1000)


# --- Masters this process has met --------------------------------------------------------------

_lock = threading.Lock()
_run_id: str | None = None
_generation = 0


def generation() -> int:
    """Changes whenever this process finds a master other than the last one it used."""
    return _generation


def _met(run_id: str, renewed: bool) -> None:
    global _run_id, _generation
    with _lock:
        changed, previous = run_id != _run_id, _run_id
        if changed:
            _run_id, _generation = run_id, _generation + 1
    if renewed:
        log.warning("Redis master %s took over: cache epoch renewed", run_id[:12])
    elif changed and previous is not None:
        log.warning("Redis master is now %s (was %s)", run_id[:12], previous[:12])


def _takeover_arguments() -> list:
    from django.core.cache import caches

    backend = caches["default"]  # the cache whose pool this connection belongs to
    keys = [backend.make_key(OWNER_KEY), *(backend.make_key(key) for key in _renewed)]
    values = [str(_renewed_ttl_ms), *(fresh() for fresh in _renewed.values())]
    return [len(keys), *keys, *values]


class MasterConnection(SentinelManagedConnection):
    """A connection to the master Sentinel names, checked for a takeover before first use."""

    def on_connect_check_health(self, check_health: bool = True):
        super().on_connect_check_health(check_health=check_health)
        # READONLY from a demoted master becomes a ConnectionError (the parent class): the
        # connection is closed, never handed out.
        self.send_command("EVAL", TAKEOVER_SCRIPT, *_takeover_arguments())
        run_id, renewed = self.read_response()
        _met(run_id.decode() if isinstance(run_id, bytes) else run_id, bool(renewed))


class SentinelConnectionFactory(django_redis_pool.SentinelConnectionFactory):
    """django-redis's Sentinel factory with `MasterConnection` (OPTIONS["CONNECTION_FACTORY"])."""

    def __init__(self, options):
        options = {
            "CONNECTION_POOL_CLASS": "redis.sentinel.SentinelConnectionPool",
            **options,
            "CONNECTION_POOL_KWARGS": {
                **options.get("CONNECTION_POOL_KWARGS", {}),
                "connection_class": MasterConnection,
            },
            "SENTINEL_KWARGS": _without_retries(options.get("SENTINEL_KWARGS") or {}),
        }
        super().__init__(options)
        if not issubclass(self.pool_cls, SentinelConnectionPool):
            raise ImproperlyConfigured("CONNECTION_POOL_CLASS must be a SentinelConnectionPool")


def _without_retries(sentinel_kwargs: dict) -> dict:
    # redis-py's clients retry ten times with backoff by default: a dead sentinel would hold
    # every new connection for seconds instead of failing over to the next sentinel at once.
    return {"retry": Retry(NoBackoff(), 0), **sentinel_kwargs}


# --- Settings --------------------------------------------------------------------------------


def parse_sentinels(values: list[str]) -> list[tuple[str, int]]:
    """["host:port", "[::1]:26379"] -> [(host, port)]."""
    found = []
    for value in values:
        host, sep, port = value.strip().rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ImproperlyConfigured(f"REDIS_SENTINELS: {value!r} is not host:port")
        found.append((host, int(port)))
    return found


def sentinel_cache(
    *, sentinels: list[str], master: str, db: int, password: str, sentinel_password: str,
    options: dict,
) -> dict:  # fmt: skip
    """The CACHES entry (without KEY_PREFIX / TIMEOUT) for Redis found through Sentinel."""
    if not master:
        raise ImproperlyConfigured("REDIS_SENTINELS needs REDIS_SENTINEL_MASTER (a service name)")
    sentinel_kwargs = {
        name: options[option]
        for name, option in (
            ("socket_timeout", "SOCKET_TIMEOUT"),
            ("socket_connect_timeout", "SOCKET_CONNECT_TIMEOUT"),
        )
        if option in options
    }
    if sentinel_password:
        sentinel_kwargs["password"] = sentinel_password
    extra = {"PASSWORD": password} if password else {}
    return {
        "BACKEND": "aios.cache.ResilientRedisCache",
        # One server, the master: django-redis' SentinelClient would also read from replicas.
        "LOCATION": f"redis://{master}/{db}",
        "OPTIONS": {
            **options,
            **extra,
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            "CONNECTION_FACTORY": "aios.redis_ha.SentinelConnectionFactory",
            "SENTINELS": parse_sentinels(sentinels),
            "SENTINEL_KWARGS": sentinel_kwargs,
        },
    }


SETTINGS = frozenset(
    {
        "REDIS_URL",
        "REDIS_SENTINELS",
        "REDIS_SENTINEL_MASTER",
        "REDIS_SENTINEL_DB",
        "REDIS_PASSWORD",
        "REDIS_SENTINEL_PASSWORD",
    }
)  # what says where the app's Redis is


def configured() -> bool:
    """Whether the app has a Redis (REDIS_URL, or Sentinel)."""
    return bool(settings.REDIS_SENTINELS or settings.REDIS_URL)


_clients: dict[tuple, redis.Redis] = {}
_clients_lock = threading.Lock()


def client(**options) -> redis.Redis:
    """A client of the app's Redis for code outside the cache (monitoring), shared by the
    process: REDIS_URL's server, or the master Sentinel names at each new connection."""
    key = (
        settings.REDIS_URL,
        tuple(settings.REDIS_SENTINELS),
        settings.REDIS_SENTINEL_MASTER,
        settings.REDIS_SENTINEL_DB,
        settings.REDIS_PASSWORD,
        settings.REDIS_SENTINEL_PASSWORD,
        tuple(sorted(options.items())),
    )
    with _clients_lock:
        found = _clients.get(key)
        if found is None:
            found = _clients[key] = _new_client(options)
        return found


def _new_client(options: dict) -> redis.Redis:
    if not settings.REDIS_SENTINELS:
        return redis.Redis.from_url(settings.REDIS_URL, **options)
    sentinel_kwargs = {k: v for k, v in options.items() if k.startswith("socket_")}
    if settings.REDIS_SENTINEL_PASSWORD:
        sentinel_kwargs["password"] = settings.REDIS_SENTINEL_PASSWORD
    sentinel = Sentinel(
        parse_sentinels(settings.REDIS_SENTINELS), sentinel_kwargs=_without_retries(sentinel_kwargs)
    )
    return sentinel.master_for(
        settings.REDIS_SENTINEL_MASTER,
        db=settings.REDIS_SENTINEL_DB,
        password=settings.REDIS_PASSWORD or None,
        **options,
    )


def reset_clients() -> None:
    """Close and forget the shared clients (tests, after changing the settings)."""
    with _clients_lock:
        found = list(_clients.values())
        _clients.clear()
    for each in found:
        each.close()
