"""Section "endpoints": each endpoint and page under gunicorn, beside the naive baseline and
the floor; then the install and review POSTs (bench/writes.py).

Variants, measured interleaved in the same run (ours warm, ours uncached, naive, floor, then
again), at one connection (latency) and at N connections (throughput):
- ours, warm: the production configuration, cache filled by a request just before;
- ours, uncached: a second gunicorn with CACHE_ENABLED=false (every request runs the ORM);
- naive: the same endpoint from bench/naive.py (under /naive/ on the first gunicorn);
- floor: a trivial JSON view (/floor/) through the same gunicorn and middleware.
"Cold" is separate: single requests right after the bench cache was emptied (a true miss
that also fills the cache), timed from Python.
"""

import time
from dataclasses import dataclass
from statistics import median
from urllib.parse import urlsplit

from django.core.cache import cache
from django.urls import Resolver404, resolve

from . import appmetrics, wrk
from .fixture import Fixture


@dataclass(frozen=True)
class Endpoint:
    key: str
    title: str
    ours: str
    naive: str | None
    auth: bool = False


ENDPOINTS = (
    Endpoint(
        "agent_list",
        "Agent list (one category)",
        "/api/v1/marketplace/agents/?category={category}",
        "/naive/agents/?category={category}",
    ),
    Endpoint("stats", "Marketplace stats", "/api/v1/marketplace/stats/", "/naive/stats/"),
    Endpoint("agent_detail", "Agent detail", "/api/v1/agents/{agent}/", "/naive/agents/{agent}/"),
    Endpoint(
        "search", "Search", "/api/v1/agents/search/?q={term}", "/naive/agents/search/?q={term}"
    ),
    Endpoint(
        "featured",
        "Featured agents",
        "/api/v1/marketplace/agents/featured/",
        "/naive/agents/featured/",
    ),
    Endpoint(
        "my_installations",
        "My installations",
        "/api/v1/me/installations/",
        "/naive/me/installations/",
        auth=True,
    ),
    Endpoint(
        "knowledge",
        "Knowledge list",
        "/api/v1/knowledge/entries/",
        "/naive/knowledge/entries/",
        auth=True,
    ),
    Endpoint("page_home", "Home page (HTML)", "/", None),
    Endpoint("page_browse_all", "Browse page, all agents (HTML)", "/agents/", None),
    Endpoint(
        "page_browse", "Browse page, one category (HTML)", "/agents/?category={category}", None
    ),
    Endpoint("page_agent", "Agent page (HTML)", "/agents/{slug}/", None),
)


def fill(template: str, fx: Fixture, slug: str) -> str:
    return template.format(
        category=fx.category_slug, agent=fx.agent_id, term=fx.search_term, slug=slug
    )


def route_exists(path: str) -> bool:
    try:
        resolve(urlsplit(path).path)
    except Resolver404:
        return False
    return True


def headers_for(endpoint: Endpoint, fx: Fixture) -> dict:
    return {"Authorization": f"Token {fx.token}"} if endpoint.auth else {}


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def cold(server, path: str, headers: dict, *, samples: int) -> dict:
    """Each request right after emptying the bench cache: the miss path, end to end."""
    times, statuses = [], set()
    for _ in range(samples):
        cache.clear()
        start = time.perf_counter()
        status, _, _ = server.get(path, headers)
        times.append((time.perf_counter() - start) * 1000)
        statuses.add(status)
    return {
        "p50_ms": round(median(times), 3),
        "p95_ms": round(percentile(times, 95), 3),
        "p99_ms": round(percentile(times, 99), 3),
        "samples": samples,
        "statuses": sorted(statuses),
    }


def not_measured(endpoint, reason: str) -> dict:
    return {"key": endpoint.key, "title": endpoint.title, "not_measured": reason}


def measure_endpoint(endpoint, *, fx, slug, cached, uncached, cfg, log) -> dict:
    path = fill(endpoint.ours, fx, slug)
    if not route_exists(path):
        return not_measured(endpoint, f"{urlsplit(path).path} does not exist yet")
    headers = headers_for(endpoint, fx)
    status, response_headers, body = cached.get(path, headers)
    if status != 200:
        return not_measured(endpoint, f"{path} answered {status}")
    naive_path = fill(endpoint.naive, fx, slug) if endpoint.naive else None
    if naive_path:
        naive_status = cached.get(naive_path, headers)[0]
        if naive_status != 200:
            raise RuntimeError(f"the naive {naive_path} answered {naive_status}")

    variants = {"ours_warm": (cached, path), "ours_uncached": (uncached, path)}
    if naive_path:
        variants["naive"] = (cached, naive_path)
    variants["floor"] = (cached, "/floor/")
    result = {
        "key": endpoint.key,
        "title": endpoint.title,
        "path": path,
        "naive_path": naive_path,
        "response_bytes": len(body),
        "cache_control": response_headers.get("cache-control"),
        "cold": cold(cached, path, headers, samples=cfg.cold_samples),
    }
    if not cfg.smoke:
        _warm_workers(variants, headers, cfg)
    for connections in sorted({1, cfg.connections}):
        runs = _rounds(variants, headers, connections, cfg)
        result[f"c{connections}"] = _summarize_level(runs)
    log(
        f"  {endpoint.title}: warm p50 {result['c1']['ours_warm']['p50_ms']} ms, "
        f"{result[f'c{cfg.connections}']['ours_warm']['rps']} req/s "
        f"({result[f'c{cfg.connections}']['ours_warm']['ratio_to_floor']}x floor)"
    )
    return result


def _header_lines(headers: dict, variant_path: str) -> list[str]:
    """wrk's -H lines; the floor is asked without the endpoint's headers."""
    return [f"{k}: {v}" for k, v in headers.items()] if variant_path != "/floor/" else []


def _warm_workers(variants: dict, headers: dict, cfg) -> None:
    """Untimed: each worker's first requests to a view pay for imports and connections."""
    for server, variant_path in variants.values():
        wrk.run(
            server.url(variant_path),
            connections=cfg.connections,
            duration=1,
            headers=_header_lines(headers, variant_path),
        )
        server.drain(settle_s=1.0)


def _rounds(variants: dict, headers: dict, connections: int, cfg) -> dict[str, list[dict]]:
    """cfg.rounds wrk runs of every variant, interleaved, at one width."""
    runs = {name: [] for name in variants}
    for _ in range(cfg.rounds):
        for name, (server, variant_path) in variants.items():
            before = None
            if name == "ours_warm":
                server.get(variant_path, headers)  # fill the cache
                before = appmetrics.metrics_text(server)
            run = wrk.run(
                server.url(variant_path),
                connections=connections,
                duration=cfg.duration,
                headers=_header_lines(headers, variant_path),
            )
            server.drain(settle_s=min(run["p99_ms"] / 1000, 2.0))
            if before is not None:
                # Proof that "warm" was served from the cache (the app's own counters).
                counted = appmetrics.hit_rate(before, appmetrics.metrics_text(server) or "")
                run["cache_hit_rate"] = counted["hit_rate"] if counted else None
            runs[name].append(run)
    return runs


def _summarize_level(runs: dict[str, list[dict]]) -> dict:
    """Each variant's summary, its lowest hit rate and its median ratio to the floor's runs."""
    level = {}
    for name, measured in runs.items():
        level[name] = wrk.summarize(measured)
        rates = [r["cache_hit_rate"] for r in measured if r.get("cache_hit_rate") is not None]
        if rates:
            level[name]["cache_hit_rate"] = min(rates)
        if name != "floor":
            pairs = zip(measured, runs["floor"], strict=True)
            ratios = [r["rps"] / f["rps"] for r, f in pairs if f["rps"]]
            level[name]["ratio_to_floor"] = round(median(ratios), 3) if ratios else None
    return level


def run_section(*, fx: Fixture, cached, uncached, cfg, log) -> dict:
    from marketplace.models import Agent

    if not wrk.available():
        return {"not_measured": "wrk is not installed (apt-get install -y wrk)", "rows": []}
    slug = Agent.objects.values_list("slug", flat=True).get(pk=fx.agent_id)
    chosen = [e for e in ENDPOINTS if cfg.endpoint_keys is None or e.key in cfg.endpoint_keys]
    rows = [
        measure_endpoint(e, fx=fx, slug=slug, cached=cached, uncached=uncached, cfg=cfg, log=log)
        for e in chosen
    ]
    from .writes import run_writes  # bench.load imports this module

    return {
        "connections": sorted({1, cfg.connections}),
        "duration_s": cfg.duration,
        "rounds": cfg.rounds,
        "rows": rows,
        "writes": run_writes(fx=fx, server=cached, cfg=cfg, log=log),
    }
