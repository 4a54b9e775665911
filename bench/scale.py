"""Section "scale": list, search and stats at bench scale and at 10x the data.

Both databases are measured the same way, one after the other: the app's queries timed
in-process (a child process per database, `python -m bench.scale DATABASE_URL`), and the
endpoints at one connection on an uncached gunicorn (every request runs its queries).
Flat means indexes, not scans.
"""

import json
import os
import subprocess
import sys

from . import wrk
from .config import ROOT_DIR, database_name
from .database import child_env, ensure_database
from .server import Gunicorn

PAGE_SIZE = 20
PATHS = {
    "agent_list": "/api/v1/marketplace/agents/?category={category}",
    "search": "/api/v1/agents/search/?q={term}",
    "stats": "/api/v1/marketplace/stats/",
}


def probe(term: str, runs: int) -> dict:
    """In the child: time the app's list, search and stats queries on DATABASE_URL."""
    import django

    django.setup()
    from django.db.models import Count

    from aios.pagination import paginate_keyset
    from marketplace.models import Agent, Category
    from marketplace.search import search_agents, search_facets, search_ordering
    from marketplace.stats import marketplace_stats

    from .queries import timed

    slug = (
        Category.objects.annotate(n=Count("agents"))
        .order_by("-n", "slug")
        .values_list("slug", flat=True)[0]
    )

    def listing():
        qs = Agent.objects.listed().in_category(slug).for_cards()
        return paginate_keyset(qs, ordering="-rating", cursor=None, page_size=PAGE_SIZE)

    def search():
        qs = search_agents(q=term)
        paginate_keyset(qs, ordering=search_ordering(None), cursor=None, page_size=PAGE_SIZE)
        search_facets(q=term)

    return {
        "agents": Agent.objects.count(),
        "category": slug,
        "queries": {
            "agent_list": timed(listing, runs=runs),
            "search": timed(search, runs=runs),
            "stats": timed(marketplace_stats, runs=runs),
        },
    }


def _probe_in_child(database_url: str, redis_url: str, term: str, runs: int) -> dict:
    env = child_env(database_url=database_url, redis_url=redis_url)
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "bench.scale", term, str(runs)],
        env=env,
        cwd=ROOT_DIR,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _endpoints(database_url, redis_url, *, term, category, cfg, log) -> dict:
    env = child_env(database_url=database_url, redis_url=redis_url, CACHE_ENABLED="false")
    out = {}
    with Gunicorn(env, f"scale-{database_name(database_url)}", log=log, workers=cfg.workers) as s:
        for key, template in PATHS.items():
            path = template.format(category=category, term=term)
            status = s.get(path)[0]
            if status != 200:
                out[key] = {"not_measured": f"{path} answered {status}"}
                continue
            out[key] = wrk.summarize([wrk.run(s.url(path), connections=1, duration=cfg.duration)])
    return out


def run_section(*, fx, cfg, log) -> dict:
    log(f"  ensuring {database_name(cfg.database_url_10x)} (scale {cfg.scale_10x})")
    setup = ensure_database(
        database_url=cfg.database_url_10x, redis_url=cfg.redis_url, scale=cfg.scale_10x, log=log
    )
    result = {"setup_10x": setup, "term": fx.search_term}
    for label, url in (("bench", cfg.database_url), ("10x", cfg.database_url_10x)):
        data = _probe_in_child(url, cfg.redis_url, fx.search_term, cfg.query_runs)
        if wrk.available():
            data["endpoints_uncached_c1"] = _endpoints(
                url, cfg.redis_url, term=fx.search_term, category=data["category"], cfg=cfg, log=log
            )
        result[label] = data
        log(f"  {label}: {data['agents']} agents, " + ", ".join(
            f"{k} {v['median_ms']} ms" for k, v in data["queries"].items()
        ))  # fmt: skip
    growth = {}
    for key in PATHS:
        base, big = result["bench"]["queries"][key], result["10x"]["queries"][key]
        growth[f"query_{key}"] = round(big["median_ms"] / base["median_ms"], 2)
        endpoints = [
            result[label].get("endpoints_uncached_c1", {}).get(key, {})
            for label in ("bench", "10x")
        ]
        if all("p50_ms" in e for e in endpoints):
            growth[f"endpoint_{key}"] = round(endpoints[1]["p50_ms"] / endpoints[0]["p50_ms"], 2)
    result["growth_10x_over_bench"] = growth
    return result


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    print(json.dumps(probe(sys.argv[1], int(sys.argv[2]))))
