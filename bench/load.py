"""Section "load": the report's load test, 100 connections on a realistic mix (bench/mix.lua).

Zipf-distributed agent, category and search-term popularity, anonymous readers, signed-in
users (pre-created tokens) reading their installations and knowledge, and about 10 % writes
(installs and reviews). The writes made during the run are undone afterwards through the
services (counters stay exact), so every run starts from the same data.
"""

import itertools
import json
import math
import os
import random
import time
from datetime import UTC, datetime

import redis
from django.contrib.auth import get_user_model

from marketplace import services
from marketplace.models import Installation, Review

from . import appmetrics, wrk
from .config import READ_SCOPES, SCRATCH_DIR
from .database import MONITORING_TOKEN
from .endpoints import route_exists
from .fixture import Fixture, reviewed_pairs

# name, weight (%), method, path (%s gets the pick), pick list, Zipf?, signed in?, kind
OPS = (
    ("agent_detail", 28, "GET", "/api/v1/agents/%s/", "agents", True, False),
    ("agent_detail_signed_in", 5, "GET", "/api/v1/agents/%s/", "agents", True, True),
    ("agent_list", 15, "GET", "/api/v1/marketplace/agents/?category=%s", "categories", True, False),
    (
        "agent_list_by_installs",
        5,
        "GET",
        "/api/v1/marketplace/agents/?category=%s&ordering=-installs",
        "categories",
        True,
        False,
    ),
    ("featured", 8, "GET", "/api/v1/marketplace/agents/featured/", None, False, False),
    ("stats", 5, "GET", "/api/v1/marketplace/stats/", None, False, False),
    ("search", 10, "GET", "/api/v1/agents/search/?q=%s", "terms", True, False),
    ("my_installations", 9, "GET", "/api/v1/me/installations/", None, False, True),
    ("knowledge", 5, "GET", "/api/v1/knowledge/entries/", None, False, True),
    ("install", 7, "POST", "/api/v1/agents/%s/install/", "agents", True, True),
    ("review", 3, "POST", "/api/v1/agents/%s/reviews/", None, False, True),
)
WRITES = {"install", "review"}
REVIEW_PAIRS = 40_000
# Write pairs are used in turn; the warm-up takes them from the start, a measured run from
# here on, so a long warm-up (eight runs of 3,000 pairs at most) never reaches them.
MEASURED_PAIRS_FROM = 30_000
WARMUP_PAIRS_PER_RUN = 3_000  # one 15 s warm-up run at 2,000 req/s, 10 % writes: 3,000


def _lua(value) -> str:
    """A Lua literal for plain data (ASCII strings, numbers, bools, lists, dicts)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "{" + ",".join(_lua(v) for v in value) + "}"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}={_lua(v)}" for k, v in value.items() if v is not None) + "}"
    raise TypeError(type(value))


def _free_pairs(fx: Fixture, taken: set, count: int) -> tuple[list[int], list[int]]:
    """(user index 1-based, agent id) pairs not in `taken`: users in turn, agents drawn
    Zipf-distributed like every other pick (popular agents get most writes, not all)."""
    rng = random.Random(7)
    agents = fx.agents_by_popularity
    cumulative = list(itertools.accumulate(1 / rank for rank in range(1, len(agents) + 1)))
    taken = set(taken)
    users, chosen = [], []
    for k in range(count):
        u = k % len(fx.load_user_ids)
        user_id = fx.load_user_ids[u]
        for _ in range(50):  # a user who wrote for every popular agent gets a random one
            agent_id = rng.choices(agents, cum_weights=cumulative)[0]
            if (user_id, agent_id) not in taken:
                break
        else:
            agent_id = next((a for a in agents if (user_id, a) not in taken), None)
            if agent_id is None:
                continue
        taken.add((user_id, agent_id))
        users.append(u + 1)
        chosen.append(agent_id)
    return users, chosen


def _review_pairs(fx: Fixture, count: int = REVIEW_PAIRS) -> tuple[list[int], list[int]]:
    """Pairs with no review yet: a review POST never gets a 409."""
    return _free_pairs(fx, reviewed_pairs(fx.load_user_ids), count)


def _install_pairs(fx: Fixture, count: int = REVIEW_PAIRS) -> tuple[list[int], list[int]]:
    """Pairs with no installation yet: every install POST creates one (201)."""
    installed = Installation.objects.filter(user_id__in=fx.load_user_ids)
    return _free_pairs(fx, set(installed.values_list("user_id", "agent_id")), count)


def build_mix(fx: Fixture) -> tuple[dict, list[dict]]:
    ops, skipped = [], []
    for name, weight, method, path, pick, zipf, auth in OPS:
        probe = path.replace("%s", "1") if "%s" in path else path
        if not route_exists(probe):
            skipped.append({"op": name, "reason": f"{probe.split('?')[0]} does not exist yet"})
            continue
        op = {"name": name, "weight": weight, "method": method, "path": path, "auth": auth}
        op.update(pick=pick, zipf=zipf, kind="review" if name == "review" else None)
        ops.append(op)
    review_users, review_agents = _review_pairs(fx)
    data = {
        "seed": 7,
        "ops": ops,
        "agents": fx.agents_by_popularity,
        "categories": fx.categories_by_popularity,
        "terms": fx.search_terms,
        "tokens": fx.load_tokens,
        "review_users": review_users,
        "review_agents": review_agents,
    }
    return data, skipped


# --- cache hit rate --------------------------------------------------------------------------


def _redis_keyspace(redis_url: str) -> tuple[int, int]:
    stats = redis.Redis.from_url(redis_url).info("stats")
    return stats["keyspace_hits"], stats["keyspace_misses"]


def scope_hit_rates(per_namespace: dict, op_counts: dict, scopes: dict = READ_SCOPES) -> dict:
    """Hit rates of shared and of per-user reads from the app's per-namespace counts.

    A namespace read by one scope only is counted exactly. One read by both (agent: the
    anonymous detail is shared, the signed-in one per user) is split by the mix's own count
    of requests per operation; its hits cannot be split, so each scope gets bounds: at worst
    every hit went to the other scope, at best all of them to this one. `namespaces` is the
    plain figure over every namespace the scope reads, the mixed ones counted whole.
    """
    out = {}
    for scope in ("shared", "per_user"):
        low = high = lookups = 0.0
        whole_hits = whole_lookups = 0.0
        names = []
        for namespace, counts in per_namespace.items():
            readers = {
                sc: sum(
                    op_counts.get(op, 0)
                    for op, (ns, op_scope) in scopes.items()
                    if ns == namespace and op_scope == sc
                )
                for sc in ("shared", "per_user")
            }
            if not readers[scope] or not sum(readers.values()):
                continue
            names.append(namespace)
            hits, total = counts["hits"], counts["hits"] + counts["misses"]
            mine = total * readers[scope] / sum(readers.values())
            low += max(0.0, hits - (total - mine))
            high += min(hits, mine)
            lookups += mine
            whole_hits += hits
            whole_lookups += total
        out[scope] = {
            "namespaces": names,
            "lookups": round(lookups),
            "hit_rate_low": round(low / lookups, 4) if lookups else None,
            "hit_rate_high": round(high / lookups, 4) if lookups else None,
            "hit_rate_namespaces": round(whole_hits / whole_lookups, 4) if whole_lookups else None,
        }
    return out


# --- undoing the run's writes ----------------------------------------------------------------


def undo_writes(fx: Fixture, since: datetime) -> dict:
    """Remove the reviews and installations the load created, through the services."""
    users = {u.pk: u for u in get_user_model().objects.filter(pk__in=fx.load_user_ids)}
    reviews = list(Review.objects.filter(user_id__in=users, created_at__gte=since))
    for review in reviews:
        services.delete_review(review=review)
    installs = list(
        Installation.objects.filter(user_id__in=users, installed_at__gte=since).select_related(
            "agent"
        )
    )
    for installation in installs:
        services.uninstall_agent(user=users[installation.user_id], agent=installation.agent)
    return {"reviews_removed": len(reviews), "installations_removed": len(installs)}


def monitoring_snapshot(server) -> dict | None:
    """The app's own snapshot (issue 6), read with the run's monitoring token, if it exists."""
    path = "/api/v1/monitoring/"
    if not route_exists(path):
        return None
    status, _, body = server.get(path, {"Authorization": f"Bearer {MONITORING_TOKEN}"})
    if status != 200:
        return {"status": status}
    try:
        snapshot = json.loads(body)
    except ValueError:
        return {"status": status, "body": body[:200].decode(errors="replace")}
    snapshot.pop("series", None)  # the per-10-s history: the run's own figures are above
    return snapshot


def _mix_file(fx: Fixture, name: str):
    """(mix data, skipped endpoints, its Lua file), or (None, a not-measured result, None)."""
    if not wrk.available():
        return None, {"not_measured": "wrk is not installed (apt-get install -y wrk)"}, None
    data, skipped = build_mix(fx)
    if not data["ops"]:
        return None, {"not_measured": "no endpoint of the mix exists yet", "skipped": skipped}, None
    SCRATCH_DIR.mkdir(parents=True, exist_ok=True)
    data_file = SCRATCH_DIR / name
    data_file.write_text("return " + _lua(data) + "\n")
    return data, skipped, data_file


def run_section(*, fx: Fixture, server, cfg, log) -> dict:
    data, skipped, data_file = _mix_file(fx, "mix_data.lua")
    if data_file is None:
        return skipped

    since = datetime.now(UTC)
    run = _run_mix(server, cfg, log, data_file)
    # The floor (a trivial view behind the same middleware) at the same width and length,
    # right after the mix: the mix's throughput as a share of what this machine serves.
    server.drain(settle_s=min(run["result"]["p99_ms"] / 1000, 2.0))
    floor = wrk.run(
        server.url("/floor/"), connections=cfg.load_connections, duration=cfg.load_duration
    )
    log(f"  floor at {cfg.load_connections} connections: {floor['rps']} req/s")
    hit_rate = _mix_hit_rate(run)
    undone = undo_writes(fx, since)
    read_only = None
    if not cfg.smoke:
        read_only = _read_only_run(data, server, cfg, log)
    return {
        **_mix_figures(data, skipped, run, floor, cfg),
        "cache": hit_rate,
        "monitoring_snapshot": run["snapshot"],
        "undone": undone,
        "read_only": read_only,
    }


def _run_mix(server, cfg, log, data_file) -> dict:
    """A warm-up, then the measured mix, with the app's metrics and Redis' counts either side."""
    # Warm-up with the same mix: the first minutes after a deployment (every copy cold, the
    # long tail of agents never asked for yet) are not the steady state the report measured.
    # Zipf over 10,000 agents: after 2,000 detail requests 71 % of the next ones find their
    # agent asked for before, after 24,000 (two minutes of the mix) 90 %.
    # wrk runs last at most wrk.MAX_DURATION: the warm-up is several, each on its own pairs.
    warm = {"requests": 0}
    for k in range(math.ceil(cfg.load_warmup / wrk.MAX_DURATION)):
        seconds = min(wrk.MAX_DURATION, cfg.load_warmup - k * wrk.MAX_DURATION)
        done = wrk.run(
            server.url("/"), connections=cfg.load_connections, duration=seconds,
            script=wrk.MIX_LUA, script_args=[data_file, k * WARMUP_PAIRS_PER_RUN],
        )  # fmt: skip
        warm["requests"] += done["requests"]
    metrics_before = appmetrics.metrics_text(server)
    keyspace_before = _redis_keyspace(cfg.redis_url)
    started = time.monotonic()
    result = wrk.run(
        server.url("/"),
        connections=cfg.load_connections,
        duration=cfg.load_duration,
        script=wrk.MIX_LUA,
        script_args=[data_file, MEASURED_PAIRS_FROM],
    )
    mix_seconds = time.monotonic() - started
    log(f"  load: {result['rps']} req/s, p95 {result['p95_ms']} ms, p99 {result['p99_ms']} ms")
    return {
        "warm": warm,
        "result": result,
        "seconds": mix_seconds,
        "metrics": (metrics_before, appmetrics.metrics_text(server)),
        "keyspace": (keyspace_before, _redis_keyspace(cfg.redis_url)),
        "snapshot": monitoring_snapshot(server),
    }


def _mix_hit_rate(run: dict) -> dict:
    """The app's own hit rates over the mix, or Redis' whole-server counts where it has none."""
    result = run["result"]
    metrics_before, metrics_after = run["metrics"]
    hit_rate = None
    if metrics_before and metrics_after:
        hit_rate = appmetrics.hit_rate(metrics_before, metrics_after)
    if hit_rate is None:
        keyspace_before, keyspace_after = run["keyspace"]
        hits = keyspace_after[0] - keyspace_before[0]
        misses = keyspace_after[1] - keyspace_before[1]
        hit_rate = {
            "hit_rate": round(hits / (hits + misses), 4) if hits + misses else None,
            "hits": hits,
            "misses": misses,
            "source": (
                "Redis INFO keyspace_hits/keyspace_misses deltas (no app cache metrics found). "
                "INFO counts the whole Redis server, not only the bench database, and every "
                "GET counts (version keys and throttle counters too), so it is approximate."
            ),
        }
    if result["cache_hit_header"] + result["cache_miss_header"]:
        header_hits = result["cache_hit_header"]
        hit_rate["x_cache_header_hit_rate"] = round(
            header_hits / (header_hits + result["cache_miss_header"]), 4
        )
    else:
        hit_rate["x_cache_header"] = "none: the app sends no X-Cache header"
    if hit_rate.get("per_namespace"):
        hit_rate["scopes"] = scope_hit_rates(hit_rate["per_namespace"], result.get("ops", {}))
    return hit_rate


def _mix_figures(data: dict, skipped: list, run: dict, floor: dict, cfg) -> dict:
    """The mix's shares, throughput against the floor, latencies and errors."""
    result = run["result"]
    answered = result["requests"]
    bad = result["s4xx"] + result["s5xx"] + result["errors_connect"] + result["errors_read"]
    bad += result["errors_write"] + result["errors_timeout"]
    weights = sum(op["weight"] for op in data["ops"])
    return {
        "connections": cfg.load_connections,
        "duration_s": round(run["seconds"], 1),
        "ops": [
            {"op": op["name"], "share": round(op["weight"] / weights, 3)} for op in data["ops"]
        ],
        "write_share": round(
            sum(op["weight"] for op in data["ops"] if op["name"] in WRITES) / weights, 3
        ),
        "skipped_ops": skipped,
        "warmup_requests": run["warm"]["requests"],
        "requests": answered,
        "requests_by_op": result.get("ops", {}),
        "rps": result["rps"],
        "floor": {k: floor[k] for k in ("rps", "p50_ms", "p95_ms", "p99_ms", "errors")},
        "ratio_to_floor": round(result["rps"] / floor["rps"], 3) if floor["rps"] else None,
        "p50_ms": result["p50_ms"],
        "p95_ms": result["p95_ms"],
        "p99_ms": result["p99_ms"],
        "max_ms": result["max_us"] / 1000,
        "status": {k: result[k] for k in ("s2xx", "s3xx", "s4xx", "s5xx")},
        "socket_errors": {
            k: result[f"errors_{k}"] for k in ("connect", "read", "write", "timeout")
        },
        "errors": bad,
        "error_rate": round(bad / answered, 5) if answered else None,
    }


def _read_only_run(data: dict, server, cfg, log) -> dict:
    """The same mix without its writes: how much of the hit rate the writes' forgetting costs."""
    reads = {**data, "ops": [op for op in data["ops"] if op["name"] not in WRITES]}
    data_file = SCRATCH_DIR / "mix_data_read_only.lua"
    data_file.write_text("return " + _lua(reads) + "\n")
    before = appmetrics.metrics_text(server)
    result = wrk.run(
        server.url("/"),
        connections=cfg.load_connections,
        duration=min(10, cfg.load_duration),
        script=wrk.MIX_LUA,
        script_args=[data_file, 0],
    )
    after = appmetrics.metrics_text(server)
    cache = appmetrics.hit_rate(before, after) if before and after else None
    log(f"  read-only mix: {result['rps']} req/s, p95 {result['p95_ms']} ms")
    return {
        "requests": result["requests"],
        "rps": result["rps"],
        "p50_ms": result["p50_ms"],
        "p95_ms": result["p95_ms"],
        "p99_ms": result["p99_ms"],
        "errors": result["s4xx"] + result["s5xx"] + result["errors_timeout"],
        "cache_hit_rate": cache["hit_rate"] if cache else None,
    }


# --- worker model ----------------------------------------------------------------------------


def worker_models(cfg) -> list[dict]:
    """gunicorn's sync workers (API_THREADS=1, 2 x cores + 1 workers) and gthread
    (API_WORKERS x API_THREADS; gunicorn turns "sync" into gthread when threads > 1, and only
    gthread keeps connections alive: keepalive = 5 s)."""
    sync_workers = 2 * (os.cpu_count() or 1) + 1
    sync = {"API_THREADS": "1", "API_WORKERS": str(sync_workers)}
    workers, threads = cfg.gthread_workers, cfg.gthread_threads
    gthread = {
        "API_WORKERS": str(workers),
        "API_THREADS": str(threads),
        # A thread holds a database connection while it runs a request.
        "DATABASE_POOL_SIZE": str(threads),
    }
    return [
        {
            "name": "sync",
            "title": f"sync, {sync_workers} workers",
            "env": sync,
            "workers": sync_workers,
        },
        {
            "name": "gthread",
            "title": f"gthread, {workers} workers x {threads} threads",
            "env": gthread,
            "workers": workers,
        },
    ]


def run_workers_section(*, fx: Fixture, env: dict, cfg, log) -> dict:
    """The load test's mix at the load width under each worker model, one server at a time:
    a warm-up, a measured run, the writes undone."""
    from .server import Gunicorn

    _, skipped, data_file = _mix_file(fx, "mix_data_workers.lua")
    if data_file is None:
        return skipped
    rows = []
    for model in worker_models(cfg):
        since = datetime.now(UTC)
        with Gunicorn(
            {**env, **model["env"]}, f"workers-{model['name']}", log=log, workers=model["workers"]
        ) as server:
            wrk.run(
                server.url("/"), connections=cfg.load_connections, duration=cfg.workers_warmup,
                script=wrk.MIX_LUA, script_args=[data_file, 0],
            )  # fmt: skip
            result = wrk.run(
                server.url("/"), connections=cfg.load_connections, duration=cfg.workers_duration,
                script=wrk.MIX_LUA, script_args=[data_file, MEASURED_PAIRS_FROM],
            )  # fmt: skip
            processes = len(server.worker_pids())
            server_errors = server.error_lines()[:20]
        bad = result["s4xx"] + result["s5xx"] + result["errors"] - result["errors_status"]
        rows.append(
            {
                "model": model["name"],
                "title": model["title"],
                "worker_processes": processes,
                "threads": int(model["env"]["API_THREADS"]),
                "requests": result["requests"],
                "rps": result["rps"],
                "p50_ms": result["p50_ms"],
                "p95_ms": result["p95_ms"],
                "p99_ms": result["p99_ms"],
                "errors": bad,
                "undone": undo_writes(fx, since),
                "server_errors": server_errors,
            }
        )
        log(f"  {model['title']}: {result['rps']} req/s, p95 {result['p95_ms']} ms")
    return {
        "connections": cfg.load_connections,
        "warmup_s": cfg.workers_warmup,
        "duration_s": cfg.workers_duration,
        "rows": rows,
    }
