"""The bench database: created, migrated and seeded once, then reused."""

import os
import secrets
import subprocess
import sys
import time

import psycopg
from psycopg import sql

from .config import ROOT_DIR, SCRATCH_DIR, database_name

# One secret per runner process, so every child (migrate, gunicorn) agrees on it.
_SECRET_KEY = secrets.token_urlsafe(50)
# The bearer token of /api/v1/monitoring/ for this run (the load section reads the snapshot).
MONITORING_TOKEN = os.environ.get("MONITORING_TOKEN") or secrets.token_urlsafe(32)


def child_env(*, database_url: str, redis_url: str, **extra) -> dict:
    """The environment of every process the bench starts: production settings, bench urlconf."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        DJANGO_SETTINGS_MODULE="bench.settings",
        DJANGO_DEBUG="false",
        AIOS_VAR_DIR=str(SCRATCH_DIR),
        PYTHONPATH=str(ROOT_DIR),
    )
    env["DJANGO_SECRET_KEY"] = os.environ.get("DJANGO_SECRET_KEY") or _SECRET_KEY
    env["MONITORING_TOKEN"] = MONITORING_TOKEN
    env.pop("AIOS_TESTING", None)
    # Sync gunicorn workers hold one connection each; the production pool minimum (20 per
    # worker) would open more connections than this shared PostgreSQL allows.
    env.setdefault("DATABASE_POOL_SIZE", "1")
    env.setdefault("DATABASE_MAX_OVERFLOW", "2")
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _maintenance_conninfo(url: str) -> str:
    return url.rsplit("/", 1)[0] + "/postgres"


def create_database_if_missing(url: str) -> bool:
    """CREATE DATABASE unless it exists. Returns whether it was created."""
    name = database_name(url)
    with psycopg.connect(_maintenance_conninfo(url), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists:
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


def manage(args: list[str], env: dict, *, log, attempts: int = 3) -> None:
    """manage.py in a child process; retried, since a shared PostgreSQL may be out of slots."""
    started = time.monotonic()
    log(f"manage.py {' '.join(args)}")
    for attempt in range(1, attempts + 1):
        done = subprocess.run(  # noqa: S603
            [sys.executable, str(ROOT_DIR / "manage.py"), *args], env=env, cwd=ROOT_DIR
        )
        if done.returncode == 0:
            break
        if attempt == attempts:
            raise subprocess.CalledProcessError(done.returncode, done.args)
        log(f"  failed (exit {done.returncode}); retrying in 15 s")
        time.sleep(15)
    log(f"  done in {time.monotonic() - started:.1f} s")


def ensure_database(*, database_url: str, redis_url: str, scale: str, log) -> dict:
    """Create, migrate and seed (`--skip-if-present`) the database; ANALYZE it. Idempotent."""
    started = time.monotonic()
    created = create_database_if_missing(database_url)
    env = child_env(database_url=database_url, redis_url=redis_url)
    manage(["migrate", "--noinput", "--verbosity", "0"], env, log=log)
    manage(["seed_demo", "--scale", scale, "--skip-if-present"], env, log=log)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("ANALYZE")
    return {
        "database": database_name(database_url),
        "created": created,
        "scale": scale,
        "seconds": round(time.monotonic() - started, 1),
    }


def collectstatic(env: dict, *, log) -> None:
    """collectstatic into the bench's scratch directory, unless nothing changed since last time."""
    manifest = SCRATCH_DIR / "staticfiles" / "staticfiles.json"
    sources = [p for p in (ROOT_DIR / "static").rglob("*") if p.is_file()]
    newest = max((p.stat().st_mtime for p in sources), default=0)
    if manifest.exists() and manifest.stat().st_mtime > newest:
        log("static files collected already and unchanged")
        return
    manage(["collectstatic", "--noinput", "--verbosity", "0"], env, log=log)
