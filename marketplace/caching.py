"""The marketplace's cache namespaces, TTLs and invalidation (aios.response_cache keeps the
copies; docs/caching.md explains the contract).

Namespaces and who retires them
    lists      marketplace-wide listings: all agents, search, stats, home.
    lists:catalog  what only an agent edit changes: categories with their counts, the
               search vocabulary and facets; the base of the two below.
    lists:cat:<slug>  a listing restricted to one category.
    lists:featured  the featured listing.
    agent:<id> an agent's pages.
    user:<id>  a user's own data (installations, own review, knowledge) and credentials.
    An agent edit retires its agent, lists and the catalog (`forget`); an install or a
    review moves counters (`forget_counters`): its agent, lists, its category and, when it
    is featured, featured may lag COUNTER_STALENESS seconds, while the writer's namespace is
    retired at once. A review's text also retires its agent's pages.
"""

import re
from collections.abc import Iterable

from django.conf import settings
from django.db import transaction

from aios import response_cache
from aios.response_cache import (  # noqa: F401 - the names the marketplace's views use
    BROWSER_MAX_AGE,
    EPOCH_NS,
    STALE_SECONDS,
    CachedResponseMixin,
    CachePolicy,
    cached_value,
    depends,
    namespaced_key,
    response_cache_stats,
)

# --- TTLs (seconds) ------------------------------------------------------------------------
LISTS_TTL = settings.CACHE_TTL  # agent listings and search: the report's 300 s by default
FEATURED_TTL = 600
STATS_TTL = 600
CATEGORIES_TTL = settings.CACHE_TTL
DETAIL_TTL = settings.CACHE_TTL
USER_TTL = 60  # installations, my review, knowledge

LISTS_NS = "lists"  # marketplace-wide listings, search, stats: anything every agent feeds
# Narrower listings, so that the many writes that only move one agent's counters (installs,
# reviews) do not retire what that agent cannot appear in:
CATALOG_NS = "lists:catalog"  # what only an agent edit changes (names, flags, membership)
FEATURED_NS = "lists:featured"  # the featured listing: counters of featured agents
NAMESPACE_LABELS = ("lists", "agent", "user")


def agent_ns(agent_id: int) -> str:
    return f"agent:{agent_id}"


def user_ns(user_id: int) -> str:
    return f"user:{user_id}"


def user_activity_ns(user_id: int) -> str:
    """What a user's own installs and reviews change in their signed-in copies."""
    return f"user:{user_id}:activity"


def category_ns(slug: str) -> str:
    """Listings restricted to one category: the counters of that category's agents."""
    return f"lists:cat:{slug}"


response_cache.configure(
    labels=NAMESPACE_LABELS,
    default_namespace={"lists": LISTS_NS},
    user_namespace=lambda user: user_ns(user.pk),
    activity_namespace=lambda user: user_activity_ns(user.pk),
)

cached_response = CachePolicy  # `@cached_response("lists", ttl=LISTS_TTL)` builds a policy


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


# --- Invalidation --------------------------------------------------------------------------
# These run even with CACHE_ENABLED=false: copies stored before caching was switched off
# must not come back, still valid, when it is switched on again.


def forget(*, agent_ids=(), user_ids=(), lists: bool = True) -> None:
    """Retire what the given agents and users feed, and (by default) every listing."""
    namespaces = [agent_ns(pk) for pk in agent_ids] + [user_ns(pk) for pk in user_ids]
    if lists:
        namespaces += [LISTS_NS, CATALOG_NS]
    response_cache.bump(namespaces)


def forget_counters(
    *, agent_ids, user_ids=(), categories=(), featured: bool = False, content: bool = False
) -> None:
    """These agents' counters moved (an install, a review) by these users' writes.

    The writers' own signed-in copies (all but their knowledge) are retired at once, and
    the copies made for everyone older than the write stop answering them. What else shows
    the counters (the agents' pages, the marketplace-wide listings, their categories'
    listings and, when one of them is featured, the featured listing) may lag
    COUNTER_STALENESS seconds; with `content` (a review's text) the agents' pages are retired
    at once too. Never the catalog."""
    counted = [LISTS_NS, *(category_ns(slug) for slug in categories)]
    if featured:
        counted.append(FEATURED_NS)
    retired = [user_activity_ns(pk) for pk in user_ids]
    if content:
        retired += [agent_ns(pk) for pk in agent_ids]
    else:
        counted += [agent_ns(pk) for pk in agent_ids]
    response_cache.bump(retired)
    response_cache.bump_counters(counted)


def forget_all() -> None:
    response_cache.bump([EPOCH_NS])


def forget_on_commit(*, agent_ids=(), user_ids=(), lists: bool = True) -> None:
    """`forget` once the current transaction commits (at once outside a transaction)."""
    agent_ids, user_ids = list(agent_ids), list(user_ids)
    transaction.on_commit(lambda: forget(agent_ids=agent_ids, user_ids=user_ids, lists=lists))


def forget_counters_on_commit(
    *, agent_ids: Iterable[int], user_ids=(), categories=(), featured=False, content=False
) -> None:
    """`forget_counters` once the current transaction commits."""
    agent_ids, user_ids, categories = list(agent_ids), list(user_ids), list(categories)
    transaction.on_commit(
        lambda: forget_counters(
            agent_ids=agent_ids,
            user_ids=user_ids,
            categories=categories,
            featured=featured,
            content=content,
        )
    )


def forget_all_on_commit() -> None:
    transaction.on_commit(forget_all)


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
