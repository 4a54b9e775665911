"""Every cache key, TTL and invalidation of the marketplace, and the response cache.

Developer note
==============
Opting a view in
    Function views and `as_view()` results take the decorator; class views (Django or DRF)
    take the mixin with one policy per handler or viewset action::

        @cached_response("lists", ttl=LISTS_TTL)
        def agent_list(request): ...

        class AgentDetailView(CachedResponseMixin, generics.RetrieveAPIView):   # API, by id
            cache_policies = {
                "get": cached_response("agent:{pk}", ttl=DETAIL_TTL, per_user=True)
            }

        class AgentViewSet(CachedResponseMixin, viewsets.ReadOnlyModelViewSet):
            cache_policies = {  # keyed by action
                "list": cached_response("lists", ttl=LISTS_TTL),
                "featured": cached_response("lists", ttl=FEATURED_TTL),
            }

        path("x/", cached_response("lists", ttl=STATS_TTL)(SomeView.as_view()))   # in urls

    A view whose agent is only known once it ran (the page `/agents/<slug>/`) declares it:
    `@cached_response("agent", ttl=DETAIL_TTL, per_user=True)` and, in the view,
    `depends(request, agent_ns(agent.pk))`. Such a response is stored as a hint the first
    time and as a servable copy from the second request on (see "Why it is never stale").

Where it is on (every cacheable GET; writes are never cached)
    API (marketplace/api/views.py, knowledge/api/views.py): agents, featured, categories,
    stats and search GET under "lists"; an agent's detail ("agent:{pk}", per user) and its
    reviews ("agent:{pk}", shared); my installations, my review of an agent and knowledge
    list / detail under "user" (per user).
    Pages (marketplace/views.py, knowledge/views.py): home, browse, search and stats under
    "lists"; an agent's page and its reviews page under "agent" (declared with `depends`);
    my agents and knowledge list / detail under "user". Every page is `per_user`: the
    signed-in header names the user and carries the logout form's CSRF token.
    My installations and my agents show agent cards: they also depend on the agents on the
    page (`depends`). Knowledge shows agent names: it also depends on "lists:catalog".

Namespaces, TTLs and who retires them
    lists      marketplace-wide listings: all agents, search, stats, home (LISTS_TTL,
               STATS_TTL). Retired by every agent change: `forget()` (flags, recount,
               receivers below: an Agent saved in the admin) and `forget_counters()` (the
               services' installs and reviews).
    lists:catalog  what only an agent edit changes: categories with their agent counts, the
               search vocabulary and facets, and the base of the two below. Retired by
               `forget()`, not by `forget_counters()`.
    lists:cat:<slug>  a listing restricted to one category (API `?category=`, browse), which
               also depends on lists:catalog. `forget_counters()` retires the categories
               of the agents whose counters moved (`listing_scope` picks these for a view).
    lists:featured  the featured listing (FEATURED_TTL; also on lists:catalog). Retired by
               `forget_counters()` when a featured agent's counters moved.
    agent:<id> an agent's detail (DETAIL_TTL). `forget(agent_ids=...)`: the same writes.
    user:<id>  a user's installations, own review, knowledge (USER_TTL, `per_user=True`).
               `forget(user_ids=...)`: install / review services; receivers: the user saved
               (password, deactivation, login; a rename also retires the agents they
               reviewed, whose pages show their name), logged out, a token or knowledge
               entry saved or deleted. Admin edits of a review go through the service.
    everything `forget_all()`: recount of all agents, `seed_demo`, a Category or Publisher
               saved or deleted, an Agent deleted (its installs cascade into users' data).
    Writes that skip signals (`update()`, `bulk_create()`) call `forget*_on_commit` themselves.

What a hit costs
    Two cache round trips (the entry, then the versions of what it depends on) and no SQL:
    the view, the ORM, serializers, templates and even authentication are skipped. A
    signed-in request is matched to its own copy by a digest of its credentials (session
    cookie, Authorization header, CSRF cookie), which only a request that passed real
    authentication can have stored; logging out, a password change, deactivation or a
    deleted token retire the user's namespace, so the old credential misses and
    re-authenticates. A shared copy (a listing) answers a request with credentials only
    once a voucher for that credential digest says it authenticates (written by a miss that
    ran the view's authentication; it depends on the user's namespace like a per-user copy),
    so a revoked or forged token gets its 401, not the public copy: one voucher per
    credential, read in the same round trip as the copy. What still goes unnoticed: a
    session that simply expires by age can read copies for up to USER_TTL.

Hits skip DRF's throttles (a deliberate choice)
    The throttles (anon, user, and the tighter `search` scope) exist to bound the database
    and CPU work one client can cause; a hit causes none (two cache round trips, no view),
    and its throttle bookkeeping would cost more cache round trips than the hit itself.
    Every miss still runs the view and its throttles, so a client walking through uncached
    variants (new queries, new cursors) is throttled exactly as without this cache. Request
    floods against one warm URL are the reverse proxy's rate limits' job.

Why it is never stale (or someone else's)
    Every entry records the version of each namespace it depends on, read *before* the view
    ran; a hit compares them with the current versions, so a write that retired any of them
    (`forget`, through `transaction.on_commit`) is never followed by the old copy: read-
    your-writes holds for the writer's next request. A namespace the view only discovers
    while running (`depends()`, the signed-in user) is not trusted the first time: the copy
    is stored with an unknown version, which the next request reads before running the
    view. Versions are random, never reused: an evicted version key cannot resurrect old
    copies. A `forget` that cannot reach Redis is replayed as `forget_all()` by the same
    process once Redis answers again.
    Shared copies come only from requests without credentials, carry no CSRF token and set
    no cookie; signed-in requests get copies keyed by their credentials. Responses say
    `Vary: Cookie, Authorization` (and Accept for DRF views), `Cache-Control: public,
    max-age=BROWSER_MAX_AGE` to anonymous visitors and `private, max-age=0,
    must-revalidate` to signed-in ones, whose browsers therefore always revalidate (ETag).

No stampede
    A copy outlives its TTL by STALE_SECONDS (not for per-user copies). The first request
    after the TTL takes a short lock (SET NX PX) and recomputes; the others keep serving the
    stale copy (stale by age only: no write retired it). On a cold key the others wait up to
    WAIT_SECONDS for the lock holder's copy.

CACHE_ENABLED=false makes `cached_response` and `cached_value` pass-through: every request
runs its view. `forget*` keep retiring versions (a few cheap writes per write), so copies
stored before the switch never come back valid after it. The cache backend stays
configured: DRF's throttles keep their counters in it.
"""

import contextlib
import functools
import hashlib
import logging
import os
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from urllib.parse import parse_qsl, urlencode

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.filebased import FileBasedCache
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.utils.cache import cc_delim_re, patch_vary_headers

from aios import compression
from aios.cache import cache_is_available
from aios.monitoring.metrics import record_cache

log = logging.getLogger(__name__)

# --- TTLs (seconds) ------------------------------------------------------------------------
LISTS_TTL = settings.CACHE_TTL  # agent listings and search: the report's 300 s by default
FEATURED_TTL = 600
STATS_TTL = 600
CATEGORIES_TTL = settings.CACHE_TTL
DETAIL_TTL = settings.CACHE_TTL
USER_TTL = 60  # installations, my review, knowledge
STALE_SECONDS = 120  # a shared copy past its TTL may be served this long while recomputed
LOCK_SECONDS = 10  # recomputation lock; outlives any sane view
WAIT_SECONDS = 2.0  # a cold key's waiters give up after this and compute themselves
POLL_SECONDS = 0.02
# Browsers and CDNs keep an anonymous copy at most this long: unlike this cache, nobody
# retires theirs on a write.
BROWSER_MAX_AGE = 60
VERSION_TTL = 24 * 3600  # an expired version only costs a miss (versions are never reused)

EPOCH_KEY = "mkt:epoch"
EPOCH_NS = "*"  # every entry depends on it: `forget_all` retires everything
LISTS_NS = "lists"  # marketplace-wide listings, search, stats: anything every agent feeds
# Narrower listings, so that the many writes that only move one agent's counters (installs,
# reviews) do not retire what that agent cannot appear in:
CATALOG_NS = "lists:catalog"  # what only an agent edit changes (names, flags, membership)
FEATURED_NS = "lists:featured"  # the featured listing: counters of featured agents
NAMESPACE_LABELS = ("lists", "agent", "user")
MESSAGES_COOKIE = "messages"  # django.contrib.messages' cookie: the page would consume it

# --- Versioned namespaces ------------------------------------------------------------------


def _ns_version_key(namespace: str) -> str:
    return EPOCH_KEY if namespace == EPOCH_NS else f"mkt:ns:{namespace}:version"


def _new_version() -> int:
    return secrets.randbits(48)


def _versions(namespaces: Iterable[str]) -> dict[str, int]:
    """Current version of each namespace, creating missing ones; {} when the cache is down."""
    keys = {_ns_version_key(ns): ns for ns in dict.fromkeys(namespaces)}
    found = cache.get_many(list(keys))
    missing = [key for key in keys if key not in found]
    if missing:
        for key in missing:
            cache.add(key, _new_version(), timeout=VERSION_TTL)
        # Whoever added first wins. (The file cache's add() is not atomic: two first readers
        # may each keep their own version; one's copy is then refused by the other, which
        # costs a recomputation, never a stale answer.)
        found.update(cache.get_many(missing))
    return {keys[key]: value for key, value in found.items()}


def agent_ns(agent_id: int) -> str:
    return f"agent:{agent_id}"


def user_ns(user_id: int) -> str:
    return f"user:{user_id}"


def category_ns(slug: str) -> str:
    """Listings restricted to one category: the counters of that category's agents."""
    return f"lists:cat:{slug}"


_SLUG = re.compile(r"[-a-zA-Z0-9_]{1,100}")


def listing_scope(request, **view_kwargs) -> list[str]:
    """The namespaces an agent listing depends on, from its query: one category's listing
    follows that category's counters and the catalog; any other follows every agent.
    Read before the view ran, from the raw query: the view confirms it (`listing_filtered`)."""
    slug = request.GET.get("category", "")  # the last value, as the views read it
    if _SLUG.fullmatch(slug):
        return [CATALOG_NS, category_ns(slug)]
    return [LISTS_NS]


def listing_filtered(request, category: str | None) -> None:
    """From a view under `listing_scope`: the category it really filtered by. When that is
    not the one `listing_scope` read (a form that dropped an unknown category, a value the
    validation normalised), the copy also follows every agent."""
    if listing_scope(request) != ([CATALOG_NS, category_ns(category)] if category else [LISTS_NS]):
        depends(request, LISTS_NS)


def namespaced_key(namespace: str, *parts) -> str:
    """A key in `namespace` that dies with the next bump of that namespace or of the epoch."""
    versions = _versions([EPOCH_NS, namespace])
    epoch, version = versions.get(EPOCH_NS, 0), versions.get(namespace, 0)
    return ":".join(["mkt", f"e{epoch}", namespace, f"v{version}", *map(str, parts)])


def cached_value(namespace: str, *parts, ttl: int, compute: Callable[[], object]):
    """Read-through for plain data under `namespaced_key` (pass-through when disabled)."""
    if not settings.CACHE_ENABLED:
        return compute()
    key = namespaced_key(namespace, *parts)
    missing = object()
    value = cache.get(key, missing)
    if value is missing:
        value = compute()
        cache.set(key, value, timeout=ttl)
    return value


# --- Invalidation --------------------------------------------------------------------------

_lost_lock = threading.Lock()
_lost_forget = False  # a forget that could not reach the cache, to replay as forget_all


def _bump(namespaces: Iterable[str]) -> None:
    global _lost_forget
    keys = [_ns_version_key(ns) for ns in namespaces]
    cache.set_many({key: _new_version() for key in keys}, timeout=VERSION_TTL)
    if not cache_is_available(cache):
        with _lost_lock:
            if not _lost_forget:
                log.warning("Cache unreachable during an invalidation; forget_all() follows")
            _lost_forget = True


def _replay_lost_forget() -> None:
    global _lost_forget
    if not _lost_forget or not cache_is_available(cache):
        return
    with _lost_lock:
        if not _lost_forget:
            return
        _lost_forget = False
    _bump([EPOCH_NS])


# forget* run even with CACHE_ENABLED=false: copies stored before caching was switched off
# must not come back, still valid, when it is switched on again.


def forget(*, agent_ids=(), user_ids=(), lists: bool = True) -> None:
    """Retire what the given agents and users feed, and (by default) every listing."""
    namespaces = [agent_ns(pk) for pk in agent_ids] + [user_ns(pk) for pk in user_ids]
    if lists:
        namespaces += [LISTS_NS, CATALOG_NS]
    if namespaces:
        _replay_lost_forget()
        _bump(namespaces)


def forget_counters(*, agent_ids, user_ids=(), categories=(), featured: bool = False) -> None:
    """Retire what a change of these agents' counters (an install, a review) can show in:
    their own pages, the users' data, the marketplace-wide listings, their categories'
    listings and, when one of them is featured, the featured listing. Not the catalog: the
    listings of other categories and the featured listing without them stay warm."""
    namespaces = [agent_ns(pk) for pk in agent_ids] + [user_ns(pk) for pk in user_ids]
    namespaces += [LISTS_NS, *(category_ns(slug) for slug in categories)]
    if featured:
        namespaces.append(FEATURED_NS)
    _replay_lost_forget()
    _bump(namespaces)


def forget_all() -> None:
    _bump([EPOCH_NS])


def forget_on_commit(*, agent_ids=(), user_ids=(), lists: bool = True) -> None:
    """`forget` once the current transaction commits (at once outside a transaction)."""
    agent_ids, user_ids = list(agent_ids), list(user_ids)
    transaction.on_commit(lambda: forget(agent_ids=agent_ids, user_ids=user_ids, lists=lists))


def forget_counters_on_commit(*, agent_ids, user_ids=(), categories=(), featured=False) -> None:
    """`forget_counters` once the current transaction commits."""
    agent_ids, user_ids, categories = list(agent_ids), list(user_ids), list(categories)
    transaction.on_commit(
        lambda: forget_counters(
            agent_ids=agent_ids, user_ids=user_ids, categories=categories, featured=featured
        )
    )


def forget_all_on_commit() -> None:
    transaction.on_commit(forget_all)


# --- Response cache ------------------------------------------------------------------------

_stats_lock = threading.Lock()
_stats: Counter = Counter()

# Set afresh on every response, or by the middleware below the cache.
_UNSTORED_HEADERS = {
    "content-length",
    "content-encoding",
    "etag",
    "cache-control",
    "expires",
    "date",
    "set-cookie",
}


def _count(label: str, outcome: str) -> None:
    with _stats_lock:
        _stats[(label, outcome)] += 1
    record_cache(label, outcome != "miss")


def response_cache_stats() -> dict[tuple[str, str], int]:
    """This process's {(namespace label, hit|stale|waited|miss): count}."""
    with _stats_lock:
        return dict(_stats)


def depends(request, *namespaces: str) -> None:
    """Declare, from inside a cached view, namespaces its response depends on."""
    request = getattr(request, "_request", request)  # DRF's Request wraps Django's
    request.__dict__.setdefault("_aios_cache_deps", set()).update(namespaces)


def _credential(request) -> str | None:
    """A digest of what authenticates the request, or None for an anonymous one."""
    auth = request.META.get("HTTP_AUTHORIZATION", "")
    session = request.COOKIES.get(settings.SESSION_COOKIE_NAME, "")
    if not auth and not session:
        return None
    csrf = request.COOKIES.get(settings.CSRF_COOKIE_NAME, "")
    return hashlib.sha256(f"{auth}\0{session}\0{csrf}".encode()).hexdigest()


def _normalised_query(request) -> str:
    pairs = parse_qsl(request.META.get("QUERY_STRING", ""), keep_blank_values=True)
    return urlencode(sorted(pairs, key=lambda pair: pair[0]))  # stable: repeats keep order


def _now() -> float:
    return time.time()


def _is_drf_view(view) -> bool:
    try:
        from rest_framework.views import APIView
    except ImportError:  # pragma: no cover - DRF is a dependency
        return False
    cls = view if isinstance(view, type) else getattr(view, "cls", None)
    return isinstance(cls, type) and issubclass(cls, APIView)


class CachePolicy:
    """How one GET view's finished response is cached (see the module docstring).

    `namespace`: "lists", "agent:{pk}" / "user:..." formatted with the URL kwargs (a
    dependency), or a bare "agent" / "user" label whose ids the view passes to `depends()`.
    `depends_on`: more namespaces, as format strings or callables (request, **kwargs).
    `scope`: for "lists", a callable (request, **kwargs) giving the listing namespaces the
    response depends on (e.g. `listing_scope`); by default every listing's, `LISTS_NS`.
    `per_user`: signed-in visitors each get their own copy (anonymous ones share one);
    otherwise the response must be the same for everyone.
    `vary_on_accept`: key on the Accept header; default: True for DRF views.
    """

    def __init__(
        self,
        namespace: str,
        *,
        ttl: int,
        per_user: bool = False,
        depends_on: Iterable[str | Callable] = (),
        scope: Callable | None = None,
        stale_seconds: int = STALE_SECONDS,
        vary_on_accept: bool | None = None,
    ):
        label = namespace.split(":", 1)[0]
        if label not in NAMESPACE_LABELS:
            raise ImproperlyConfigured(f"cache namespace {namespace!r}: one of {NAMESPACE_LABELS}")
        if label == "user" and not per_user:
            raise ImproperlyConfigured("user data is cached per user: pass per_user=True")
        if scope is not None and namespace != "lists":
            raise ImproperlyConfigured("scope= narrows a listing: namespace must be 'lists'")
        self.namespace = namespace
        self.scope = scope
        self.label = label
        self.ttl = ttl
        self.per_user = per_user
        self.depends_on = tuple(depends_on)
        self.stale_seconds = stale_seconds
        self.vary_on_accept = vary_on_accept

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

    # -- the request path --

    def static_namespaces(self, request, view_kwargs) -> list[str]:
        namespaces = [EPOCH_NS]
        if ":" in self.namespace:
            namespaces.append(self.namespace.format(**view_kwargs))
        elif self.scope is not None:
            namespaces.extend(self.scope(request, **view_kwargs))
        elif self.label == "lists":
            namespaces.append(LISTS_NS)
        for dep in self.depends_on:
            if callable(dep):
                namespaces.extend(dep(request, **view_kwargs))
            else:
                namespaces.append(dep.format(**view_kwargs))
        return namespaces

    def key(self, request, variant: str, *, vary_on_accept: bool) -> str:
        raw = "\n".join(
            [
                "GET",  # HEAD is answered from GET's copy
                request.scheme,
                request.get_host(),
                request.path,
                _normalised_query(request),
                request.META.get("HTTP_ACCEPT", "") if vary_on_accept else "",
                variant,
            ]
        )
        return f"mkt:resp:{self.label}:{hashlib.sha256(raw.encode()).hexdigest()[:40]}"

    def serve(self, request: HttpRequest, call_view, view_kwargs, *, vary_on_accept: bool):
        if (
            not settings.CACHE_ENABLED
            or request.method not in ("GET", "HEAD")
            or MESSAGES_COOKIE in request.COOKIES
        ):
            return call_view()
        _replay_lost_forget()
        credential = _credential(request)
        if not self.per_user:
            variant = "all"
        elif credential is None:
            variant = "anonymous"
        else:
            variant = f"credential:{credential}"
        shared = credential is None or not self.per_user
        key = self.key(request, variant, vary_on_accept=vary_on_accept)
        static = self.static_namespaces(request, view_kwargs)

        # A shared copy still answers a signed-in request only while its credential is
        # known to authenticate: a revoked token gets its 401, never the public copy.
        vouch = credential is not None and not self.per_user
        # One round trip for the copy, the voucher and the versions known beforehand; a
        # second only for namespaces the copy names beyond those (its agent, its user).
        static_keys = {_ns_version_key(ns): ns for ns in dict.fromkeys(static)}
        voucher_key = _voucher_key(credential) if vouch else None
        found = cache.get_many([key, *static_keys, *([voucher_key] if vouch else [])])
        entry = found.get(key)
        voucher = found.get(voucher_key) if vouch else None
        versions = {ns: found[k] for k, ns in static_keys.items() if k in found}
        deps = [*static, *(entry["deps"] if entry else ())]
        if voucher and voucher["ns"]:
            deps.append(voucher["ns"])
        unread = [ns for ns in dict.fromkeys(deps) if ns not in versions]
        if unread:
            versions.update(_versions(unread))
        trusted = not vouch or _vouched(voucher, versions)
        locked = False
        if not trusted:
            pass  # run the view: it authenticates, and `_vouch` records the outcome
        elif entry is not None and _valid(entry, static, versions):
            if _now() < entry["soft"]:
                return self._hit(request, entry, credential, vary_on_accept, "hit")
            if shared:  # per-user copies are never served past their TTL
                if not _lock(key):
                    return self._hit(request, entry, credential, vary_on_accept, "stale")
                locked = True
        elif shared and versions:
            locked = _lock(key)
            if not locked and cache_is_available(cache):
                waited = self._wait(key, static, versions)
                if waited is not None:
                    return self._hit(request, waited, credential, vary_on_accept, "waited")
        if locked:
            # The previous holder may have stored a copy between our read and our lock.
            again = cache.get(key)
            if again is not None and _valid(again, static, versions) and _now() < again["soft"]:
                _unlock(key)
                return self._hit(request, again, credential, vary_on_accept, "waited")
        try:
            response = call_view()
            if hasattr(response, "render") and callable(response.render):
                response = response.render()  # DRF / TemplateResponse: the bytes to keep
            if not trusted:
                _vouch(request, response, credential, voucher, versions)
            entry = self._entry(request, response, static, versions, credential)
            if entry is not None and versions:
                timeout = self.ttl + (self.stale_seconds if shared else 0)
                cache.set(key, entry, timeout=timeout)
        finally:
            if locked:
                _unlock(key)
        _count(self.label, "miss")
        if entry is None:
            return response
        return self._respond(request, entry, credential, vary_on_accept)

    def _wait(self, key: str, static, versions):
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
            held = _locked(key)  # before the read: a holder stores, then unlocks
            entry = cache.get(key)
            if entry is not None and _valid(entry, static, versions):
                return entry
            if not held:
                return None  # the holder finished without a usable copy: compute
        return None

    def _hit(self, request, entry, credential, vary_on_accept, outcome):
        _count(self.label, outcome)
        return self._respond(request, entry, credential, vary_on_accept)

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
        # A shared page is only ever taken from an anonymous request.
        is_html = response.get("Content-Type", "").startswith("text/html")
        return not (credential is not None and not self.per_user and is_html)

    def _entry(self, request, response, static, versions, credential) -> dict | None:
        if not self._storable(request, response, credential):
            return None
        discovered = set(static) | request.__dict__.get("_aios_cache_deps", set())
        if credential is not None and self.per_user:
            user = getattr(request, "user", None)
            if user is not None and user.is_authenticated:
                discovered.add(user_ns(user.pk))
        body = response.content
        entry = {
            "deps": {ns: versions.get(ns) for ns in sorted(discovered)},
            "soft": _now() + self.ttl,
            "status": response.status_code,
            "headers": [(k, v) for k, v in response.items() if k.lower() not in _UNSTORED_HEADERS],
            "body": body,
            "etag": f'"{hashlib.blake2b(body, digest_size=16).hexdigest()}"',
            "codings": {},
        }
        shared = credential is None or not self.per_user
        if shared and len(body) >= compression.MIN_SIZE and compression.is_compressible(response):
            # Compressed once here, so hits never compress. No secrets in a shared copy.
            for coding in ("br", "gzip"):
                packed = compression.compress(body, coding, stored=True)
                if len(packed) < len(body):
                    entry["codings"][coding] = packed
        return entry

    def _respond(self, request, entry, credential, vary_on_accept) -> HttpResponse:
        coding = None
        if entry["codings"]:
            coding = compression.choose_coding(request.META.get("HTTP_ACCEPT_ENCODING", ""))
            coding = coding if coding in entry["codings"] else None
        etag = compression.etag_for_coding(entry["etag"], coding)
        if compression.etag_matches(request.META.get("HTTP_IF_NONE_MATCH", ""), etag):
            response = HttpResponseNotModified()
        else:
            response = HttpResponse(
                entry["codings"][coding] if coding else entry["body"], status=entry["status"]
            )
            for header, value in entry["headers"]:
                response.headers[header] = value
            if coding:
                response.headers["Content-Encoding"] = coding
        response.headers["ETag"] = etag
        if credential is None:
            response.headers["Cache-Control"] = f"public, max-age={min(self.ttl, BROWSER_MAX_AGE)}"
        else:
            response.headers["Cache-Control"] = "private, max-age=0, must-revalidate"
        vary = ["Cookie", "Authorization"] + (["Accept"] if vary_on_accept else [])
        if entry["codings"]:
            vary.append("Accept-Encoding")
        for header, value in entry["headers"]:
            if header.lower() == "vary":
                response.headers["Vary"] = value
        patch_vary_headers(response, vary)
        return response


# The recomputation lock. On Redis `add` is SET NX PX: atomic. The file cache's `add` is a
# check-then-write that two workers can both win, so there the lock is a file created with
# O_EXCL next to the cache's own files (which `clear()` and culling leave alone).


def _lock_file(key: str) -> str | None:
    backend = caches["default"]
    if not isinstance(backend, FileBasedCache):
        return None
    return os.path.join(backend._dir, hashlib.sha256(key.encode()).hexdigest() + ".lock")


def _lock(key: str) -> bool:
    path = _lock_file(key)
    if path is None:
        return bool(cache.add(f"{key}:lock", 1, timeout=LOCK_SECONDS))
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


def _locked(key: str) -> bool:
    path = _lock_file(key)
    return cache.has_key(f"{key}:lock") if path is None else os.path.exists(path)


def _unlock(key: str) -> None:
    path = _lock_file(key)
    if path is None:
        cache.delete(f"{key}:lock")
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


# Vouchers: which credentials a shared copy may answer. One per credential digest, not per
# URL, so a signed-in client pays its misses once, not once per shared URL. Like a per-user
# copy, it trusts the user's namespace version only once read before a view ran: the first
# request learns whose credential it is, the next one vouches; a write to the user (password,
# deactivation, token deleted, logout, an install) retires it.


def _voucher_key(credential: str) -> str:
    return f"mkt:voucher:{credential}"


def _vouched(voucher: dict | None, versions: dict[str, int]) -> bool:
    if voucher is None or _now() >= voucher["soft"]:
        return False
    ns = voucher["ns"]
    return ns is None or (voucher["version"] is not None and versions.get(ns) == voucher["version"])


def _vouch(request, response, credential: str, voucher: dict | None, versions) -> None:
    if response.status_code != 200:
        return  # e.g. a 401 for a revoked token: nothing to vouch for
    user = getattr(request, "user", None)  # DRF sets the user it authenticated on it
    ns = version = None
    if user is not None and user.is_authenticated:
        ns = user_ns(user.pk)
        if voucher and voucher["ns"] == ns:
            version = versions.get(ns)  # read before the view ran: trustworthy
    # A credential that authenticates nobody (a stale session cookie) is an anonymous one.
    value = {"ns": ns, "version": version, "soft": _now() + USER_TTL}
    cache.set(_voucher_key(credential), value, timeout=VERSION_TTL)


def _valid(entry: dict, static: list[str], versions: dict[str, int]) -> bool:
    deps = entry["deps"]
    return all(ns in deps for ns in static) and all(
        version is not None and versions.get(ns) == version for ns, version in deps.items()
    )


# The public name views use: `@cached_response("lists", ttl=LISTS_TTL)` builds a policy.
cached_response = CachePolicy


class CachedResponseMixin:
    """Response caching for class-based views: `cache_policies` maps a handler ("get") or a
    viewset action ("list", "retrieve", "featured") to a `cached_response(...)` policy."""

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


# --- Receivers (connected in MarketplaceConfig.ready) --------------------------------------
# Admin edits and other saves that go through the ORM's signals; services that use update()
# call forget_* themselves.


def _agent_saved(sender, instance, **kwargs):
    forget_on_commit(agent_ids=[instance.pk])


def _marketplace_wide(sender, instance, **kwargs):
    # A category or publisher shows on every card of its agents; a deleted agent cascades
    # into its users' installations and reviews: rare admin edits, so retire everything.
    forget_all_on_commit()


AUTHOR_FIELDS = {"username", "first_name", "last_name"}  # what the agent pages show of a reviewer


def _user_saved(sender, instance, created=False, update_fields=None, **kwargs):
    agent_ids = []
    if not created and (update_fields is None or AUTHOR_FIELDS & set(update_fields)):
        # A rename shows on the pages of every agent the user reviewed. (A login saves
        # only last_login: no query.)
        agent_ids = list(instance.reviews.values_list("agent_id", flat=True))
    forget_on_commit(user_ids=[instance.pk], agent_ids=agent_ids, lists=False)


def _user_deleted(sender, instance, **kwargs):
    # Their reviews and installs went with them: services.recount_agents_of_deleted_user
    # retires those agents.
    forget_on_commit(user_ids=[instance.pk], lists=False)


def _user_logged_out(sender, request, user, **kwargs):
    if user is not None:
        forget_on_commit(user_ids=[user.pk], lists=False)


def _owned_by_user(sender, instance, **kwargs):
    forget_on_commit(user_ids=[instance.user_id], lists=False)


def connect_receivers() -> None:
    from django.apps import apps
    from django.contrib.auth import get_user_model
    from django.contrib.auth.signals import user_logged_out
    from django.db.models.signals import post_delete, post_save

    from .models import Agent, Category, Publisher

    post_save.connect(_agent_saved, sender=Agent, dispatch_uid="mkt-cache-agent-save")
    post_delete.connect(_marketplace_wide, sender=Agent, dispatch_uid="mkt-cache-agent-del")
    for model in (Category, Publisher):
        name = model._meta.model_name
        post_save.connect(_marketplace_wide, sender=model, dispatch_uid=f"mkt-cache-{name}-save")
        post_delete.connect(_marketplace_wide, sender=model, dispatch_uid=f"mkt-cache-{name}-del")
    # A credential that stops being valid must stop matching the user's cached copies.
    user_model = get_user_model()
    post_save.connect(_user_saved, sender=user_model, dispatch_uid="mkt-cache-user-save")
    post_delete.connect(_user_deleted, sender=user_model, dispatch_uid="mkt-cache-user-del")
    user_logged_out.connect(_user_logged_out, dispatch_uid="mkt-cache-logout")
    owned = []
    if apps.is_installed("rest_framework.authtoken"):
        owned.append(apps.get_model("authtoken", "Token"))
    if apps.is_installed("knowledge"):
        owned.append(apps.get_model("knowledge", "KnowledgeEntry"))
    for model in owned:
        name = model._meta.label_lower
        post_save.connect(_owned_by_user, sender=model, dispatch_uid=f"mkt-cache-{name}-save")
        post_delete.connect(_owned_by_user, sender=model, dispatch_uid=f"mkt-cache-{name}-del")
