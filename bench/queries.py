"""Section "query": the ORM queries the endpoints run, timed in-process, beside naive ones.

"Ours" calls the app's own code (QuerySet methods, `paginate_keyset`, `search_agents`,
`marketplace_stats`); nothing is re-implemented here. "Naive" is what a first version runs:
no composite index (index scans disabled for its main query, as if only primary keys were
indexed), a COUNT for the paginator, OFFSET, and no select_related (one query per nested
object on the page). Each variant runs warm, many times; the median is reported. Plans from
`EXPLAIN (ANALYZE, BUFFERS)` of every distinct statement are saved beside the report.
"""

import time
from contextlib import contextmanager
from pathlib import Path
from statistics import median

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Q

from marketplace.managers import AGENT_ORDERINGS
from marketplace.models import Agent, Installation

from .fixture import PAGE_SIZE, Fixture
from .naive import naive_stats

TOP_RATED = AGENT_ORDERINGS["-rating"]

_state = {"no_index": False}


@contextmanager
def without_indexes():
    """Plan as if the table had no secondary index (the naive schema)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute("SET LOCAL enable_indexonlyscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        _state["no_index"] = True
        try:
            yield
        finally:
            _state["no_index"] = False


class Recorder:
    """Every statement run (sql, params, planned without indexes?), via execute_wrapper."""

    def __init__(self):
        self.statements = []

    def __call__(self, execute, sql, params, many, context):
        if not sql.lstrip().upper().startswith("SET "):
            self.statements.append((sql, params, _state["no_index"]))
        return execute(sql, params, many, context)


def record(fn) -> list:
    recorder = Recorder()
    with connection.execute_wrapper(recorder):
        fn()
    return recorder.statements


def timed(fn, *, runs: int, budget_s: float = 8.0) -> dict:
    """Median wall time of `fn` over `runs` warm runs (fewer if the budget runs out, min 3)."""
    for _ in range(2):
        fn()  # warm: plan caches, buffers, Python imports
    samples = []
    deadline = time.perf_counter() + budget_s
    while len(samples) < runs and (len(samples) < 3 or time.perf_counter() < deadline):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return {
        "median_ms": round(median(samples), 3),
        "min_ms": round(samples[0], 3),
        "p95_ms": round(samples[min(len(samples) - 1, int(len(samples) * 0.95))], 3),
        "runs": len(samples),
    }


def explain(statements, path: Path, *, limit: int = 6) -> None:
    """Save EXPLAIN (ANALYZE, BUFFERS) of the distinct statements (repeats of an N+1 once)."""
    seen, blocks = set(), []
    for sql, params, no_index in statements:
        shape = sql.split(" WHERE ")[0] + str(no_index)
        if shape in seen:
            continue
        seen.add(shape)
        if len(blocks) == limit:
            blocks.append(f"-- ... and {len(statements) - limit} more statements\n")
            break

        def run(sql=sql, params=params):
            with connection.cursor() as cursor:
                cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
                return "\n".join(row[0] for row in cursor.fetchall())

        if no_index:
            with without_indexes():
                plan = run()
        else:
            plan = run()
        label = " (index scans off: naive schema)" if no_index else ""
        shown = f"{sql}\n-- params: {list(params or ())}"
        blocks.append(f"-- statement {len(blocks) + 1}{label}\n{shown}\n\n{plan}\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(blocks))


# --- the report's five rows ------------------------------------------------------------------


def _cards(rows) -> None:
    for agent in rows:
        agent.category.name, agent.publisher.name  # noqa: B018  what a card serializer reads


def _naive_page(queryset, *, offset: int = 0):
    """LimitOffset: a COUNT and an OFFSET page, both planned without secondary indexes."""
    with without_indexes():
        queryset.count()
        return list(queryset[offset : offset + PAGE_SIZE])


def _ours(fx: Fixture, user) -> dict:
    """Each row's read through the app's own code, as its endpoint makes it."""
    from aios.pagination import paginate_keyset
    from marketplace.search import search_agents, search_facets, search_ordering
    from marketplace.stats import marketplace_stats

    slug = fx.category_slug

    def page(queryset, ordering):
        return paginate_keyset(queryset, ordering=ordering, cursor=None, page_size=PAGE_SIZE)

    def category():
        _cards(page(Agent.objects.listed().in_category(slug).for_cards(), TOP_RATED).items)

    def installations():
        items = page(
            Installation.objects.for_user(user).with_agent_cards(), ("installed_at", "desc")
        ).items
        _cards([i.agent for i in items])

    def featured():
        _cards(page(Agent.objects.featured().for_cards(), TOP_RATED).items)

    def search(term):
        _cards(page(search_agents(q=term), search_ordering(None)).items)
        search_facets(q=term)

    return {
        "category": category,
        "installations": installations,
        "featured": featured,
        "search": lambda: search(fx.search_term),
        "stats": marketplace_stats,
        "search_broad": lambda: search(fx.broad_term),
    }


def _naive(fx: Fixture, user) -> dict:
    """Each row's read as a first version makes it: no index, COUNT, OFFSET, N+1."""
    slug = fx.category_slug

    def category():
        qs = Agent.objects.filter(is_active=True, category__slug=slug).order_by("-rating_average")
        _cards(_naive_page(qs))

    def installations():
        qs = Installation.objects.filter(user=user).order_by("-installed_at")
        _cards([i.agent for i in _naive_page(qs)])

    def featured():
        qs = Agent.objects.filter(is_active=True, is_featured=True).order_by("-rating_average")
        _cards(_naive_page(qs))

    def search(term):
        match = Q(name__icontains=term) | Q(tagline__icontains=term)
        match |= Q(description__icontains=term)
        qs = Agent.objects.filter(match, is_active=True).order_by("-rating_average")
        _cards(_naive_page(qs))

    def stats():
        with without_indexes():
            naive_stats()

    return {
        "category": category,
        "installations": installations,
        "featured": featured,
        "search": lambda: search(fx.search_term),
        "stats": stats,
        "search_broad": lambda: search(fx.broad_term),
    }


def rows_for(fx: Fixture) -> list[dict]:
    user = get_user_model().objects.get(pk=fx.user_id)
    ours, naive = _ours(fx, user), _naive(fx, user)
    rows = [
        {"key": "category", "title": "List agents by category", "arg": fx.category_slug},
        {"key": "installations", "title": "User installations", "arg": f"user {fx.user_id}"},
        {"key": "featured", "title": "Featured agents", "arg": ""},
        {"key": "search", "title": "Agent search (page + facets)", "arg": fx.search_term},
        {"key": "stats", "title": "Marketplace stats", "arg": ""},
        # Not one of the report's rows: the most common word, the widest search.
        {"key": "search_broad", "title": "Agent search, most common word",
         "arg": fx.broad_term, "extra": True},
    ]  # fmt: skip
    return [{**row, "ours": ours[row["key"]], "naive": naive[row["key"]]} for row in rows]


def depth_rows(*, runs: int, plans: Path, log) -> dict:
    """Key-set cursor at page 1 and page 500 (the real paginator), OFFSET at the same pages."""
    from aios.pagination import paginate_keyset

    def listing():
        return Agent.objects.listed().for_cards()

    cursor, depth = None, 1
    while depth < 500:
        nxt = paginate_keyset(listing(), ordering=TOP_RATED, cursor=cursor, page_size=PAGE_SIZE)
        if nxt.next_cursor is None:
            break
        cursor, depth = nxt.next_cursor, depth + 1
    log(f"  deepest page reached by walking the cursor: {depth}")
    offset = (depth - 1) * PAGE_SIZE
    variants = {
        "cursor_page_1": lambda: paginate_keyset(
            listing(), ordering=TOP_RATED, cursor=None, page_size=PAGE_SIZE
        ),
        f"cursor_page_{depth}": lambda: paginate_keyset(
            listing(), ordering=TOP_RATED, cursor=cursor, page_size=PAGE_SIZE
        ),
        "offset_page_1": lambda: list(listing().ordered("-rating")[:PAGE_SIZE]),
        f"offset_page_{depth}": lambda: list(
            listing().ordered("-rating")[offset : offset + PAGE_SIZE]
        ),
    }
    out = {"deep_page": depth}
    for name, fn in variants.items():
        out[name] = timed(fn, runs=runs)
        explain(record(fn), plans / f"depth_{name}.txt")
    first, deep = out["cursor_page_1"]["median_ms"], out[f"cursor_page_{depth}"]["median_ms"]
    out["cursor_deep_over_first"] = round(deep / first, 3) if first else None
    first, deep = out["offset_page_1"]["median_ms"], out[f"offset_page_{depth}"]["median_ms"]
    out["offset_deep_over_first"] = round(deep / first, 3) if first else None
    return out


def run_section(fx: Fixture, *, runs: int, plans: Path, log) -> dict:
    rows = []
    for row in rows_for(fx):
        log(f"  {row['title']}")
        result = {"key": row["key"], "title": row["title"], "arg": row["arg"]}
        result["report_row"] = not row.get("extra")
        for variant in ("ours", "naive"):
            statements = record(row[variant])
            result[variant] = {**timed(row[variant], runs=runs), "queries": len(statements)}
            explain(statements, plans / f"{row['key']}_{variant}.txt")
        ours, naive = result["ours"]["median_ms"], result["naive"]["median_ms"]
        result["improvement"] = round(naive / ours, 1) if ours else None
        rows.append(result)
    return {"rows": rows, "depth": depth_rows(runs=runs, plans=plans, log=log)}
