"""Marketplace-wide figures, from the counters stored on each agent row.

Three queries whatever the data size: one aggregate over marketplace_agents, one per-category
aggregate, and the top agents. Installations and reviews are never counted row by row: they
are SUMs of the denormalised counters that marketplace.services keeps exact.

Totals of installations and reviews (and the rating figures) cover every agent, listed or
not, since those rows exist; agent counts per category and top agents cover listed agents.
The result is plain data (ints, floats, strings, lists, dicts), safe to cache as is.
"""

from django.db.models import Count, Q, Sum
from django.db.models.functions import Coalesce

from .models import RATINGS, Agent, Category

TOP_AGENTS = 5


def marketplace_stats(*, top: int = TOP_AGENTS) -> dict:
    totals = Agent.objects.order_by().aggregate(
        total_agents=Count("id"),
        active_agents=Count("id", filter=Q(is_active=True)),
        featured_agents=Count("id", filter=Q(is_active=True, is_featured=True)),
        total_installations=Coalesce(Sum("install_count"), 0),
        total_reviews=Coalesce(Sum("rating_count"), 0),
        **{f"ratings_{r}": Coalesce(Sum(f"ratings_{r}"), 0) for r in RATINGS},
    )
    distribution = {str(r): totals.pop(f"ratings_{r}") for r in RATINGS}
    counted = sum(distribution.values())
    # Weighted by rating_count through the histogram: sum(r * n_r) / sum(n_r).
    average = sum(r * distribution[str(r)] for r in RATINGS) / counted if counted else None

    active = Q(agents__is_active=True)
    categories = [
        {
            "slug": c.slug,
            "name": c.name,
            "agent_count": c.agent_count,
            "install_count": c.install_count,
        }
        for c in Category.objects.only("slug", "name", "position").annotate(
            # One relation only, so the Count and the Sum do not multiply each other's rows.
            agent_count=Count("agents", filter=active),
            install_count=Coalesce(Sum("agents__install_count", filter=active), 0),
        )
    ]

    top_agents = [
        {
            "id": a["id"],
            "slug": a["slug"],
            "name": a["name"],
            "category": {"slug": a["category__slug"], "name": a["category__name"]},
            "rating_average": a["rating_average"],
            "rating_count": a["rating_count"],
            "install_count": a["install_count"],
        }
        for a in Agent.objects.listed()
        .ordered("-installs")
        .values(
            "id",
            "slug",
            "name",
            "rating_average",
            "rating_count",
            "install_count",
            "category__slug",
            "category__name",
        )[:top]
    ]

    return {
        **totals,
        "average_rating": round(average, 4) if average is not None else None,
        "rating_distribution": distribution,
        "categories": categories,
        "top_agents": top_agents,
    }
