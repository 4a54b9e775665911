"""Every cache key, TTL and invalidation of the marketplace.

Keys live in versioned namespaces: a write bumps the version of each namespace it touches
(one `incr`), which retires every key built under the old version at once, without `KEYS`
or `SCAN`. A global epoch, part of every key, retires everything (`forget_all`).
"""

import contextlib
import logging

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

log = logging.getLogger(__name__)

EPOCH_KEY = "mkt:epoch"
LISTS_NS = "lists"  # listings, featured, search, categories, stats: anything many agents feed


def _ns_version_key(namespace: str) -> str:
    return f"mkt:ns:{namespace}:version"


def _version(namespace: str) -> int:
    return cache.get_or_set(_ns_version_key(namespace), 1, timeout=None)


def _bump(key: str) -> None:
    with contextlib.suppress(ValueError):  # nothing cached under it yet: nothing to retire
        cache.incr(key)


def namespaced_key(namespace: str, *parts) -> str:
    """A key in `namespace` that dies with the next bump of that namespace or of the epoch."""
    epoch = cache.get_or_set(EPOCH_KEY, 1, timeout=None)
    version = _version(namespace)
    return ":".join(["mkt", f"e{epoch}", namespace, f"v{version}", *map(str, parts)])


def agent_ns(agent_id: int) -> str:
    return f"agent:{agent_id}"


def user_ns(user_id: int) -> str:
    return f"user:{user_id}"


def forget(*, agent_ids=(), user_ids=(), lists: bool = True) -> None:
    """Retire what the given agents and users feed, and (by default) every listing."""
    if not settings.CACHE_ENABLED:
        return
    keys = [_ns_version_key(agent_ns(pk)) for pk in agent_ids]
    keys += [_ns_version_key(user_ns(pk)) for pk in user_ids]
    if lists:
        keys.append(_ns_version_key(LISTS_NS))
    for key in keys:
        _bump(key)


def forget_all() -> None:
    if settings.CACHE_ENABLED:
        _bump(EPOCH_KEY)


def forget_on_commit(*, agent_ids=(), user_ids=(), lists: bool = True) -> None:
    """`forget` once the current transaction commits (at once outside a transaction)."""
    agent_ids, user_ids = list(agent_ids), list(user_ids)
    transaction.on_commit(lambda: forget(agent_ids=agent_ids, user_ids=user_ids, lists=lists))


def forget_all_on_commit() -> None:
    transaction.on_commit(forget_all)
