import pytest
from django.db import OperationalError, connection


def test_healthz_answers_without_touching_the_database(client):
    # No django_db mark: any query here would raise "Database access not allowed".
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_reports_database_and_cache_with_timings(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    for name in ("database:default", "cache"):
        assert body["checks"][name]["ok"] is True
        assert body["checks"][name]["ms"] >= 0


@pytest.mark.django_db
def test_readyz_is_503_when_the_database_is_down(client, monkeypatch):
    def refuse():
        raise OperationalError("connection refused")

    # Every query goes through ensure_connection(): a database that refuses connections.
    monkeypatch.setattr(connection, "ensure_connection", refuse)
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready"
    assert body["checks"]["database:default"] == {
        "ok": False,
        "error": "OperationalError",
        "ms": body["checks"]["database:default"]["ms"],
    }
    assert body["checks"]["cache"]["ok"] is True


def unreachable_redis(**options) -> dict:
    """CACHES for a Redis nobody listens on (port 1)."""
    backend, location = "django_redis.cache.RedisCache", "redis://127.0.0.1:1/0"
    options = {"SOCKET_CONNECT_TIMEOUT": 0.25, **options}
    return {"default": {"BACKEND": backend, "LOCATION": location, "OPTIONS": options}}


@pytest.mark.django_db
def test_readyz_is_503_when_the_cache_is_down(client, settings):
    settings.CACHES = unreachable_redis(SOCKET_TIMEOUT=0.25)  # the app's tight timeouts
    response = client.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["cache"]["ok"] is False
    assert checks["database:default"]["ok"] is True


@pytest.mark.django_db
def test_readyz_is_503_when_the_cache_swallows_errors(client, settings):
    settings.CACHES = unreachable_redis(IGNORE_EXCEPTIONS=True)
    assert client.get("/readyz").status_code == 503


@pytest.mark.parametrize("path", ["/healthz", "/metrics"])
def test_probes_and_scrapes_are_not_redirected_to_https(client, settings, path):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get(path).status_code == 200
    assert client.get("/api/v1/monitoring/").status_code == 301  # everything else is
