"""Marketplace-wide figures, from the per-category rollup of the agent counters.

Two queries whatever the data size: the categories with the sums of their CategoryStats
stripes (at most STATS_SHARDS rows per category, kept exact by database triggers on the agent
table), and the top agents (an index scan with a LIMIT). Every agent has a category, so the
marketplace totals are the sums of the category sums. Installations and reviews are never
counted row by row: the rollup sums the denormalised counters that marketplace.services
keeps exact.

Totals of installations and reviews (and the rating figures) cover every agent, listed or
not, since those rows exist; agent counts per category and top agents cover listed agents.
The result is plain data (ints, floats, strings, lists, dicts), safe to cache as is.
"""

from django.db.models import Sum
from django.db.models.functions import Coalesce

from .models import RATINGS, Agent, Category

TOP_AGENTS = 5

# CategoryStats column -> key of the marketplace totals it sums into.
TOTALS = {
    "agents": "total_agents",
    "active_agents": "active_agents",
    "featured_agents": "featured_agents",
    "installs": "total_installations",
    "reviews": "total_reviews",
}
ROLLUP_COLUMNS = (*TOTALS, "active_installs", *(f"ratings_{r}" for r in RATINGS))


def marketplace_stats(*, top: int = TOP_AGENTS) -> dict:
    categories = list(
        Category.objects.only("slug", "name", "position")
        .annotate(
            # Prefixed: `agents` is already the reverse relation's name.
            **{f"sum_{c}": Coalesce(Sum(f"stats__{c}"), 0) for c in ROLLUP_COLUMNS}
        )
        # Explicit: Meta.ordering does not apply to a GROUP BY query (menu order, not hash order).
        .order_by("position", "name")
    )

    def total(column: str) -> int:
        return sum(getattr(c, f"sum_{column}") for c in categories)

    totals = {key: total(column) for column, key in TOTALS.items()}
    distribution = {str(r): total(f"ratings_{r}") for r in RATINGS}
    counted = sum(distribution.values())
    # Weighted by rating_count through the histogram: sum(r * n_r) / sum(n_r).
    average = sum(r * distribution[str(r)] for r in RATINGS) / counted if counted else None

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
        "categories": [
            {
                "slug": c.slug,
                "name": c.name,
                # Listed agents only, as everywhere visitors see a category.
                "agent_count": c.sum_active_agents,
                "install_count": c.sum_active_installs,
            }
            for c in categories
        ],
        "top_agents": top_agents,
    }
