"""Project-level checks: migrations, settings knobs, the compose file."""

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.core.management import call_command

ROOT = Path(settings.BASE_DIR)


@pytest.mark.django_db
def test_models_and_migrations_agree():
    out = io.StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


def test_system_checks_pass():
    call_command("check", "--fail-level", "WARNING")


def test_every_runtime_requirement_is_pinned():
    for name in ("requirements.txt", "requirements-dev.txt"):
        for line in (ROOT / name).read_text().splitlines():
            line = line.strip()
            if line and not line.startswith(("#", "-r ", "-c ")):
                assert "==" in line, f"{name}: {line} is not pinned"


def _run_settings(env: dict) -> dict:
    """Import the settings in a fresh interpreter with `env` and return the knobs."""
    code = (
        "import json, aios.settings as s; print(json.dumps({"
        "'pool': s.DATABASES['default'].get('OPTIONS', {}).get('pool'),"
        "'engine': s.DATABASES['default']['ENGINE'],"
        "'cache': s.CACHES['default']['BACKEND'],"
        "'prefix': s.CACHES['default']['KEY_PREFIX'],"
        "'ttl': s.CACHES['default']['TIMEOUT'],"
        "'enabled': s.CACHE_ENABLED, 'timeout': s.REQUEST_TIMEOUT}))"
    )
    base = {"PATH": "/usr/bin:/bin", "AIOS_TESTING": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**base, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def test_embedded_default_is_sqlite_with_a_shared_file_cache():
    knobs = _run_settings({})
    assert knobs["engine"].endswith("sqlite3")
    assert knobs["cache"].endswith("FileBasedCache")
    assert knobs["pool"] is None
    assert (knobs["prefix"], knobs["ttl"], knobs["enabled"], knobs["timeout"]) == (
        "aios",
        300,
        True,
        30,
    )


def test_database_and_redis_urls_switch_backends_and_size_the_pool():
    knobs = _run_settings(
        {
            "DATABASE_URL": "postgres://u@db:5432/x",
            "REDIS_URL": "redis://cache:6379/0",
            "DATABASE_POOL_SIZE": "7",
            "DATABASE_MAX_OVERFLOW": "3",
            "CACHE_KEY_PREFIX": "blue",
            "CACHE_TTL": "42",
        }
    )
    assert knobs["engine"].endswith("postgresql")
    assert knobs["pool"]["min_size"] == 7
    assert knobs["pool"]["max_size"] == 10
    assert 0 < knobs["pool"]["timeout"] <= 30
    assert knobs["cache"] == "aios.cache.ResilientRedisCache"  # django-redis + breaker
    assert (knobs["prefix"], knobs["ttl"]) == ("blue", 42)


def _compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_file_follows_the_compose_specification():
    tool = shutil.which("check-jsonschema") or str(
        Path(sys.executable).with_name("check-jsonschema")
    )
    if not Path(tool).exists():
        pytest.skip("check-jsonschema is not installed (requirements-dev.txt)")
    result = subprocess.run(
        [tool, "--builtin-schema", "vendor.compose-spec", str(ROOT / "docker-compose.yml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_dependencies_name_existing_services_and_wait_for_health():
    services = _compose()["services"]
    for name, service in services.items():
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown service {dependency}"
            if name == "web":
                assert condition["condition"] == "service_healthy"
                assert "healthcheck" in services[dependency]
    assert {"web", "postgres", "redis"} <= set(services)
