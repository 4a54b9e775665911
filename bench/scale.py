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
from contextlib import ExitStack
from statistics import median

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
    from marketplace.managers import AGENT_ORDERINGS
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
        return paginate_keyset(
            qs, ordering=AGENT_ORDERINGS["-rating"], cursor=None, page_size=PAGE_SIZE
        )

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


def _servers_env(url, redis_url):
    return child_env(database_url=url, redis_url=redis_url, CACHE_ENABLED="false")


def _endpoints(urls: dict, categories: dict, *, term, cfg, log) -> dict:
    """Both uncached servers up at once, their runs interleaved: bench, 10x, bench, 10x..."""
    runs = {label: {key: [] for key in PATHS} for label in urls}
    skipped = {label: {} for label in urls}
    with ExitStack() as stack:
        servers = {
            label: stack.enter_context(
                Gunicorn(
                    _servers_env(url, cfg.redis_url),
                    f"scale-{database_name(url)}",
                    log=log,
                    workers=cfg.workers,
                )
            )
            for label, url in urls.items()
        }
        for _ in range(cfg.rounds):
            for key, template in PATHS.items():
                for label, server in servers.items():
                    path = template.format(category=categories[label], term=term)
                    status = server.get(path)[0]
                    if status != 200:
                        skipped[label][key] = {"not_measured": f"{path} answered {status}"}
                        continue
                    runs[label][key].append(
                        wrk.run(server.url(path), connections=1, duration=cfg.duration)
                    )
    return {
        label: {
            key: skipped[label].get(key) or wrk.summarize(measured)
            for key, measured in runs[label].items()
        }
        for label in urls
    }


def run_section(*, fx, cfg, log) -> dict:
    log(f"  ensuring {database_name(cfg.database_url_10x)} (scale {cfg.scale_10x})")
    setup = ensure_database(
        database_url=cfg.database_url_10x, redis_url=cfg.redis_url, scale=cfg.scale_10x, log=log
    )
    urls = {"bench": cfg.database_url, "10x": cfg.database_url_10x}
    result = {"setup_10x": setup, "term": fx.search_term, "rounds": cfg.rounds}
    # Alternating child processes, several rounds: a busy moment on the shared cores then
    # hits both sizes rather than one.
    probes = {label: [] for label in urls}
    for _ in range(cfg.rounds):
        for label, url in urls.items():
            probes[label].append(
                _probe_in_child(url, cfg.redis_url, fx.search_term, cfg.query_runs)
            )
    for label, rounds in probes.items():
        result[label] = {
            "agents": rounds[0]["agents"],
            "category": rounds[0]["category"],
            "queries": {
                key: {
                    "median_ms": round(median(r["queries"][key]["median_ms"] for r in rounds), 3),
                    "rounds": [r["queries"][key]["median_ms"] for r in rounds],
                }
                for key in PATHS
            },
        }
        log(f"  {label}: {result[label]['agents']} agents, " + ", ".join(
            f"{k} {v['median_ms']} ms" for k, v in result[label]["queries"].items()
        ))  # fmt: skip
    if wrk.available():
        categories = {label: result[label]["category"] for label in urls}
        measured = _endpoints(urls, categories, term=fx.search_term, cfg=cfg, log=log)
        for label in urls:
            result[label]["endpoints_uncached_c1"] = measured[label]
    growth = {}
    for key in PATHS:
        base, big = result["bench"]["queries"][key], result["10x"]["queries"][key]
        growth[f"query_{key}"] = round(big["median_ms"] / base["median_ms"], 2)
        endpoints = [result[label].get("endpoints_uncached_c1", {}).get(key, {}) for label in urls]
        if all("p50_ms" in e for e in endpoints):
            growth[f"endpoint_{key}"] = round(endpoints[1]["p50_ms"] / endpoints[0]["p50_ms"], 2)
    result["growth_10x_over_bench"] = growth
    return result


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    print(json.dumps(probe(sys.argv[1], int(sys.argv[2]))))
