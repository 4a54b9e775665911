"""The machine the figures come from."""

import os
import platform
import shutil
import subprocess

import psycopg
import redis


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _wrk_version() -> str | None:
    if not shutil.which("wrk"):
        return None
    out = subprocess.run(["wrk", "--version"], capture_output=True, text=True)  # noqa: S607
    return (out.stdout or out.stderr).splitlines()[0].split(" Copyright")[0].strip()


def describe(*, database_url: str, redis_url: str, workers: int) -> dict:
    with psycopg.connect(database_url) as conn:
        pg = conn.execute("SHOW server_version").fetchone()[0]
        shared_buffers = conn.execute("SHOW shared_buffers").fetchone()[0]
    info = redis.Redis.from_url(redis_url).info("server")
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgresql": pg,
        "postgresql_shared_buffers": shared_buffers,
        "redis": info.get("redis_version"),
        "load_generator": _wrk_version(),
        "gunicorn_workers": workers,
        "gunicorn_threads": int(os.environ.get("API_THREADS") or 4),  # gunicorn.conf.py
        "note": (
            "Server, PostgreSQL, Redis and the load generator (wrk, one thread) share the same "
            "cores, so absolute figures understate a dedicated server; ratios measured in the "
            "same run (interleaved) are the comparable ones."
        ),
    }
