"""The bench runner: `python -m bench [--smoke] [--sections a,b] [--with-10x] [--out DIR]`.

Exits non-zero only when the harness itself breaks; a missed target or an endpoint that does
not exist yet is a result, reported as such.
"""

import argparse
import json
import os
import shlex
import sys
import time
import traceback
from contextlib import ExitStack
from datetime import UTC, datetime

from .config import SECTIONS, Config, database_name
from .database import child_env, collectstatic, ensure_database


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="small data, seconds per section")
    parser.add_argument(
        "--sections",
        type=lambda v: tuple(s.strip() for s in v.split(",") if s.strip()),
        help=f"comma-separated subset of {','.join(SECTIONS)} (default: all but scale)",
    )
    parser.add_argument(
        "--with-10x", action="store_true", help="also run the scale section (seeds 10x data once)"
    )
    parser.add_argument("--out", help="results directory (default bench/results[/smoke])")
    args = parser.parse_args(argv)
    unknown = set(args.sections or ()) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    return args


def _env(cfg: Config) -> dict:
    extra = {"BENCH_PLAIN_STATIC": "1"} if cfg.smoke else {}
    return child_env(database_url=cfg.database_url, redis_url=cfg.redis_url, **extra)


def _setup_django(cfg: Config) -> None:
    os.environ.update(_env(cfg))
    import django

    django.setup()


def _data_description() -> str:
    from knowledge.models import KnowledgeEntry
    from marketplace.models import Agent, Installation, Review

    counts = {
        "agents": Agent.objects.count(),
        "installations": Installation.objects.count(),
        "reviews": Review.objects.count(),
        "knowledge entries": KnowledgeEntry.objects.count(),
    }
    return ", ".join(f"{n:,} {name}" for name, n in counts.items())


def _new_results(cfg: Config, argv, started: datetime) -> dict:
    """The results' opening: the command, the configuration, empty sections and errors."""
    return {
        "command": "python -m bench " + shlex.join(sys.argv[1:] if argv is None else argv),
        "smoke": cfg.smoke,
        "started_at": started.isoformat(timespec="seconds"),
        "config": {
            "database": database_name(cfg.database_url),
            "scale": cfg.scale,
            "sections": list(cfg.sections),
            "duration_s": cfg.duration,
            "rounds": cfg.rounds,
            "connections": cfg.connections,
            "load_connections": cfg.load_connections,
            "load_duration_s": cfg.load_duration,
            "load_warmup_s": cfg.load_warmup,
            "workers_warmup_s": cfg.workers_warmup,
            "workers_duration_s": cfg.workers_duration,
            "gthread": f"{cfg.gthread_workers} workers x {cfg.gthread_threads} threads",
            "query_runs": cfg.query_runs,
            "cold_samples": cfg.cold_samples,
        },
        "sections": {},
        "errors": {},
    }


def _run_section(results: dict, cfg: Config, name: str, fn) -> None:
    """Run one section if it was asked for; a broken one is recorded and the rest still runs."""
    if name not in cfg.sections:
        return
    _log(f"section {name}")
    try:
        results["sections"][name] = fn()
    except Exception:  # a broken section is reported and fails the run, the rest still runs
        results["errors"][name] = traceback.format_exc()
        _log(f"section {name} FAILED:\n{results['errors'][name]}")


def _run_server_sections(results: dict, cfg: Config, fx, env: dict, needs_server) -> int | None:
    """The sections that share the bench's gunicorn servers (started on first use, stopped
    at the end); returns the cached server's worker count (the configured one if none ran)."""
    from . import endpoints, extras, load, queries
    from .server import Gunicorn

    def section(name, fn):
        _run_section(results, cfg, name, fn)

    with ExitStack() as stack:
        servers = {}

        def server(name):
            if name not in servers:
                extra = {"CACHE_ENABLED": "false"} if name == "uncached" else {}
                servers[name] = stack.enter_context(
                    Gunicorn({**env, **extra}, name, log=_log, workers=cfg.workers)
                )
            return servers[name]

        section(
            "query",
            lambda: queries.run_section(
                fx, runs=cfg.query_runs, plans=cfg.out_dir / "plans", log=_log
            ),
        )
        section(
            "endpoints",
            lambda: endpoints.run_section(
                fx=fx, cached=server("cached"), uncached=server("uncached"), cfg=cfg, log=_log
            ),
        )
        if "uncached" in servers:
            servers.pop("uncached").__exit__(None, None, None)
        section("load", lambda: load.run_section(fx=fx, server=server("cached"), cfg=cfg, log=_log))
        slug = None
        if needs_server:
            from marketplace.models import Agent

            slug = Agent.objects.values_list("slug", flat=True).get(pk=fx.agent_id)
        section(
            "compression",
            lambda: extras.compression(fx=fx, server=server("cached"), slug=slug),
        )
        after = "the load test" if "load" in results["sections"] else "the sections above"
        section("memory", lambda: extras.memory(server=server("cached"), after=after))
        workers = servers["cached"].expected_workers() if "cached" in servers else cfg.workers
        for srv in servers.values():
            if srv.error_lines():
                results.setdefault("server_errors", {})[srv.name] = srv.error_lines()[:20]
    return workers


def _write_results(cfg: Config, results: dict) -> int:
    """results.json and REPORT.md; non-zero when a section of the harness broke."""
    from . import report

    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    (cfg.out_dir / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    (cfg.out_dir / "REPORT.md").write_text(report.render(results))
    _log(f"wrote {cfg.out_dir / 'REPORT.md'} and results.json")
    if results["errors"]:
        _log(f"harness errors in: {', '.join(results['errors'])}")
        return 1
    return 0


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    cfg = Config.from_env(
        smoke=args.smoke, sections=args.sections, out_dir=args.out, with_10x=args.with_10x
    )
    if args.with_10x and "scale" not in cfg.sections:
        cfg.sections = (*cfg.sections, "scale")
    started = datetime.now(UTC)
    _log(f"database {database_name(cfg.database_url)}, sections {', '.join(cfg.sections)}")
    results = _new_results(cfg, argv, started)
    results["setup"] = ensure_database(
        database_url=cfg.database_url, redis_url=cfg.redis_url, scale=cfg.scale, log=_log
    )
    _setup_django(cfg)

    from . import edge, load, machine, report, scale
    from .fixture import build_fixture

    fx = build_fixture()
    results["fixture"] = fx.as_dict()
    results["data"] = _data_description()
    env = _env(cfg)
    needs_server = {"endpoints", "load", "compression", "memory", "workers", "edge"}
    needs_server &= set(cfg.sections)
    if needs_server and not cfg.smoke:
        collectstatic(env, log=_log)
    workers = _run_server_sections(results, cfg, fx, env, needs_server)
    # Its own servers, one at a time, once the others are gone.
    _run_section(
        results,
        cfg,
        "workers",
        lambda: load.run_workers_section(fx=fx, env=env, cfg=cfg, log=_log),
    )
    _run_section(results, cfg, "edge", lambda: edge.run_section(fx=fx, env=env, cfg=cfg, log=_log))
    _run_section(results, cfg, "scale", lambda: scale.run_section(fx=fx, cfg=cfg, log=_log))

    results["machine"] = machine.describe(
        database_url=cfg.database_url,
        redis_url=cfg.redis_url,
        workers=workers or os.cpu_count() + 1,  # gunicorn.conf.py (x API_THREADS threads)
    )
    results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    results["targets"] = report.evaluate_targets(results)
    return _write_results(cfg, results)
