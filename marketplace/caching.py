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
from aios.response_cache import EPOCH_NS, user_activity_ns, user_ns

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
NAMESPACE_LABELS = ("lists", "agent")  # and aios.response_cache's "user"


def agent_ns(agent_id: int) -> str:
    return f"agent:{agent_id}"


def category_ns(slug: str) -> str:
    """Listings restricted to one category: the counters of that category's agents."""
    return f"lists:cat:{slug}"


response_cache.configure(labels=NAMESPACE_LABELS, default_namespace={"lists": LISTS_NS})

_SLUG = re.compile(r"[-a-zA-Z0-9_]{1,100}")


def listing_scope(request, **view_kwargs) -> list[str]:
    """The namespaces an agent listing depends on, from its query: one category's listing
    follows that category's counters and the catalog; any other follows every agent.
    Read before the view ran, from the raw query, whose last value the views filter by;
    a value they do not accept answers 400, which is never stored."""
    slug = request.GET.get("category", "")  # the last value, as the views read it
    if _SLUG.fullmatch(slug):
        return [CATALOG_NS, category_ns(slug)]
    return [LISTS_NS]


def follows_agent(context) -> list[str]:
    """An agent's page, found by slug: it follows that agent."""
    return [agent_ns(context["agent"].pk)]


def follows_page_agents(context) -> list[str]:
    """A page of installations: it follows the agents on it (their counters show)."""
    return [agent_ns(item.agent_id) for item in context["page"].items]


def follows_results_agents(data) -> list[str]:
    """An API page of installations: it follows the agents on it."""
    return [agent_ns(row["agent"]["id"]) for row in data["results"]]


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
    response_cache.bump(retired, counters=counted)


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


def _reviewer_saved(sender, instance, created=False, update_fields=None, **kwargs):
    # A rename shows on the pages of every agent the user reviewed. (A login saves only
    # last_login: no query.) aios.response_cache retires the user's own copies.
    if not created and (update_fields is None or AUTHOR_FIELDS & set(update_fields)):
        agent_ids = list(instance.reviews.values_list("agent_id", flat=True))
        if agent_ids:
            forget_on_commit(agent_ids=agent_ids, lists=False)


def connect_receivers() -> None:
    from django.contrib.auth import get_user_model
    from django.db.models.signals import post_delete, post_save

    from .models import Agent, Category, Publisher

    post_save.connect(_agent_saved, sender=Agent, dispatch_uid="mkt-cache-agent-save")
    post_delete.connect(_marketplace_wide, sender=Agent, dispatch_uid="mkt-cache-agent-del")
    for model in (Category, Publisher):
        name = model._meta.model_name
        post_save.connect(_marketplace_wide, sender=model, dispatch_uid=f"mkt-cache-{name}-save")
        post_delete.connect(_marketplace_wide, sender=model, dispatch_uid=f"mkt-cache-{name}-del")
    user_model = get_user_model()
    post_save.connect(_reviewer_saved, sender=user_model, dispatch_uid="mkt-cache-reviewer-save")
