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

import functools

from django.db import connection, connections

from aios import replicas

from .models import RATINGS, Agent, Category, CategoryStats, rating_average

TOP_AGENTS = 5

# CategoryStats column -> key of the marketplace totals it sums into.
TOTALS = {
    "agents": "total_agents",
    "active_agents": "active_agents",
    "featured_agents": "featured_agents",
    "installs": "total_installations",
    "reviews": "total_reviews",
}
ROLLUP_COLUMNS = CategoryStats.SUM_FIELDS


@functools.cache
def _category_sums_sql() -> str:
    """The categories with the sums of their stripes, in menu order, as one fixed statement.

    Written out once rather than built by the ORM per call: compiling eleven annotated SUMs
    took twice as long as the database took to run them. (Meta.ordering would not apply to
    a GROUP BY anyway: the ORDER BY is explicit.)"""
    qn = connection.ops.quote_name
    category, stats = Category._meta, CategoryStats._meta
    col = {f.name: qn(f.column) for f in stats.concrete_fields}
    cat = {f.name: qn(f.column) for f in category.concrete_fields}
    sums = ", ".join(f"COALESCE(SUM(s.{col[c]}), 0)" for c in ROLLUP_COLUMNS)
    # Quoted identifiers from the models' metadata only: nothing here comes from a request.
    return (
        f"SELECT c.{cat['slug']}, c.{cat['name']}, {sums} "  # noqa: S608
        f"FROM {qn(category.db_table)} c "
        f"LEFT JOIN {qn(stats.db_table)} s ON s.{col['category']} = c.{cat['id']} "
        f"GROUP BY c.{cat['id']}, c.{cat['slug']}, c.{cat['name']}, c.{cat['position']} "
        f"ORDER BY c.{cat['position']}, c.{cat['name']}"
    )


def _category_sums() -> list[tuple[str, str, dict[str, int]]]:
    """(slug, name, {rollup column: sum}) per category, in menu order."""
    with connections[replicas.read_alias()].cursor() as cursor:
        cursor.execute(_category_sums_sql())
        rows = cursor.fetchall()
    return [
        (slug, name, {c: int(v) for c, v in zip(ROLLUP_COLUMNS, sums, strict=True)})
        for slug, name, *sums in rows
    ]


def marketplace_stats(*, top: int = TOP_AGENTS) -> dict:
    categories = _category_sums()

    def total(column: str) -> int:
        return sum(sums[column] for _, _, sums in categories)

    totals = {key: total(column) for column, key in TOTALS.items()}
    distribution = {str(r): total(f"ratings_{r}") for r in RATINGS}
    # Weighted by rating_count through the histogram: sum(r * n_r) / sum(n_r).
    histogram = [distribution[str(r)] for r in RATINGS]
    average = rating_average(histogram) if sum(histogram) else None

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
                "slug": slug,
                "name": name,
                # Listed agents only, as everywhere visitors see a category.
                "agent_count": sums["active_agents"],
                "install_count": sums["active_installs"],
            }
            for slug, name, sums in categories
        ],
        "top_agents": top_agents,
    }
