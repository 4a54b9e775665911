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
            if name.startswith("web"):
                assert condition["condition"] == "service_healthy"
                assert "healthcheck" in services[dependency]
            # A service every shape runs cannot wait for one only a profile starts.
            if not service.get("profiles"):
                assert not services[dependency].get("profiles"), (name, dependency)
    assert {"web", "postgres", "redis"} <= set(services)


# --- The scale profile: every part of issue 15's production shape, wired together ----------

SCALE_SETTINGS = {
    "DATABASE_REPLICA_URLS",
    "REDIS_SENTINELS",
    "REDIS_SENTINEL_MASTER",
    "EDGE_PURGE_URLS",
    "TRUSTED_PROXIES",
}


def _scale_env() -> dict:
    lines = (ROOT / "deploy" / "scale.env").read_text().splitlines()
    pairs = [line.split("=", 1) for line in lines if line.strip() and not line.startswith("#")]
    return dict(pairs)


def test_the_scale_profile_runs_replicas_sentinels_two_web_instances_and_the_edge():
    services = _compose()["services"]
    scale = {name for name, s in services.items() if "scale" in (s.get("profiles") or [])}
    assert scale == {
        "postgres-replica",
        "redis-replica",
        "redis-sentinel-1",
        "redis-sentinel-2",
        "redis-sentinel-3",
        "web-2",
        "haproxy",
        "varnish",
    }
    web, web_2 = services["web"], services["web-2"]
    assert web_2["build"] == web["build"]  # the same image
    for name in ("web", "web-2"):
        environment = services[name]["environment"]
        assert set(environment) >= SCALE_SETTINGS, name
        assert environment["DJANGO_SECRET_KEY"] == web["environment"]["DJANGO_SECRET_KEY"]
    assert "--replicaof" in services["redis-replica"]["command"]
    for n in (1, 2, 3):
        command = "\n".join(services[f"redis-sentinel-{n}"]["command"])
        assert "sentinel monitor aios redis 6379 2" in command and "--sentinel" in command
    assert services["varnish"]["ports"] == ["8080:80"]  # the public door


def test_the_scale_env_file_wires_the_instances_to_the_profiles_services():
    env, services = _scale_env(), _compose()["services"]
    assert set(env) >= SCALE_SETTINGS
    assert env["REDIS_SENTINEL_MASTER"] == "aios"
    for sentinel in env["REDIS_SENTINELS"].split(","):
        host, port = sentinel.split(":")
        assert host in services and port == "26379"
    assert "@postgres-replica:5432/" in env["DATABASE_REPLICA_URLS"]
    assert env["EDGE_PURGE_URLS"] == "http://varnish:80"  # the varnish image listens on 80
    assert env["WEB_PUBLISH"].startswith("127.0.0.1:")  # only the edge faces clients


def test_the_scale_profiles_mounted_configs_exist_and_agree_with_each_other():
    services = _compose()["services"]
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), (name, source)
    haproxy = services["haproxy"]["environment"]
    backend = (ROOT / "deploy" / "varnish" / "backend.vcl").read_text()
    assert '.host = "haproxy";' in backend
    assert f'.port = "{haproxy["HAPROXY_BIND"].rsplit(":", 1)[1]}";' in backend
    assert "acl purgers" in backend
    assert {haproxy["WEB_1"], haproxy["WEB_2"]} == {"web:8000", "web-2:8000"}


def test_the_haproxy_config_is_valid_with_the_compose_settings():
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(haproxy).exists():
        pytest.skip("haproxy is not installed (apt-get install haproxy)")
    environment = _compose()["services"]["haproxy"]["environment"]
    result = subprocess.run(
        [haproxy, "-c", "-f", str(ROOT / "deploy" / "haproxy" / "haproxy.cfg")],
        env={"PATH": "/usr/bin:/bin", **environment},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
