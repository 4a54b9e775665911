"""Where the bench runs: databases, Redis, paths, and how long each section measures."""

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

BENCH_DIR = Path(__file__).resolve().parent
ROOT_DIR = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
SCRATCH_DIR = BENCH_DIR / ".var"

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/aios_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/8"

# Whose copy each read of the load mix (bench/load.py OPS) is: "shared" copies are made for
# everyone (anonymous API reads), "per_user" ones for one signed-in user (policy
# per_user=True). The app's metrics count look-ups by namespace label only
# (aios_cache_requests_total{namespace,result}). The signed-in agent detail is not cached
# (signed_in_copies=False): it looks nothing up and is no cacheable read.
READ_SCOPES = {
    "agent_detail": ("agent", "shared"),
    "agent_list": ("lists", "shared"),
    "agent_list_by_installs": ("lists", "shared"),
    "featured": ("lists", "shared"),
    "stats": ("lists", "shared"),
    "search": ("lists", "shared"),
    "my_installations": ("user", "per_user"),
    "knowledge": ("user", "per_user"),
}

SECTIONS = ("query", "endpoints", "load", "compression", "memory", "workers", "edge", "scale")


def setup_in_process(tool: str, *, uncached: bool) -> None:
    """Django set up in this process as the bench's server runs (bench settings and data)."""
    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    os.environ.setdefault("REDIS_URL", DEFAULT_REDIS_URL)
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    os.environ.setdefault("DJANGO_SECRET_KEY", f"bench-{tool}-only")
    os.environ.setdefault("AIOS_VAR_DIR", str(SCRATCH_DIR))
    if uncached:
        os.environ["CACHE_ENABLED"] = "false"
    import django

    django.setup()


def with_database_name(url: str, suffix: str) -> str:
    """The same server and credentials, database `<name><suffix>` (aios_bench -> aios_bench10x)."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/") or "aios_bench"
    return urlunsplit(parts._replace(path=f"/{name}{suffix}"))


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


@dataclass
class Config:
    database_url: str
    redis_url: str
    scale: str  # seed_demo --scale
    smoke: bool
    sections: tuple[str, ...]
    out_dir: Path
    duration: int  # seconds per wrk run
    rounds: int  # interleaved rounds per endpoint
    connections: int  # the "N" of -c1 / -cN (32 in a full run)
    load_connections: int
    load_duration: int
    load_warmup: int  # seconds of the same mix before the measured run (steady state)
    query_runs: int  # timed runs per query (median)
    cold_samples: int  # cache-miss requests per endpoint
    workers: int | None  # API_WORKERS for gunicorn (None: gunicorn.conf.py's default)
    database_url_10x: str
    scale_10x: str
    workers_warmup: int = 10  # section "workers": seconds of the mix before each measured run
    workers_duration: int = 15  # ... and of the measured run, per worker model
    gthread_workers: int = 3  # the gthread model: API_WORKERS x API_THREADS
    gthread_threads: int = 4
    endpoint_keys: tuple[str, ...] | None = None  # None: every endpoint

    @classmethod
    def from_env(cls, *, smoke: bool, sections, out_dir=None, with_10x: bool = False):
        base_url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
        if not base_url.startswith(("postgres://", "postgresql://")):
            raise SystemExit(f"bench: DATABASE_URL must point at PostgreSQL, not {base_url!r}")
        redis_url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
        chosen = tuple(sections or SECTIONS)
        if not with_10x and sections is None:
            chosen = tuple(s for s in chosen if s != "scale")
        workers = os.environ.get("API_WORKERS")
        common = {
            "redis_url": redis_url,
            "sections": chosen,
            "database_url_10x": os.environ.get("BENCH_10X_DATABASE_URL")
            or with_database_name(base_url, "10x"),
            "scale_10x": os.environ.get("BENCH_10X_SCALE", "100000"),
        }
        if smoke:
            return cls(
                database_url=os.environ.get("BENCH_SMOKE_DATABASE_URL")
                or with_database_name(base_url, "smoke"),
                scale="small",
                smoke=True,
                out_dir=Path(out_dir or RESULTS_DIR / "smoke"),
                duration=1,
                rounds=1,
                connections=1,  # latency only
                load_connections=8,
                load_duration=2,
                load_warmup=1,
                query_runs=5,
                cold_samples=3,
                # Two workers start in half the time; one anonymous, one signed-in, one page.
                workers=int(workers) if workers else 2,
                workers_warmup=1,
                workers_duration=2,
                gthread_workers=2,
                gthread_threads=2,
                endpoint_keys=("agent_list", "my_installations", "page_agent"),
                **common,
            )
        return cls(
            database_url=base_url,
            scale="bench",
            smoke=False,
            out_dir=Path(out_dir or RESULTS_DIR),
            duration=int(os.environ.get("BENCH_DURATION", 2)),
            rounds=int(os.environ.get("BENCH_ROUNDS", 2)),
            # The read-path targets (issue 13) compare req/s with the floor's at 32 connections.
            connections=int(os.environ.get("BENCH_CONNECTIONS", 32)),
            load_connections=100,
            load_duration=int(os.environ.get("BENCH_LOAD_DURATION", 30)),
            load_warmup=int(os.environ.get("BENCH_LOAD_WARMUP", 120)),
            query_runs=int(os.environ.get("BENCH_QUERY_RUNS", 40)),
            cold_samples=int(os.environ.get("BENCH_COLD_SAMPLES", 30)),
            workers=int(workers) if workers else None,
            **common,
        )
