import pytest
from django.test import Client
from django.urls import reverse

PUBLIC = {"REMOTE_ADDR": "203.0.113.9"}


def test_metrics_answers_loopback(client):
    assert client.get("/metrics").status_code == 200


def test_metrics_is_closed_to_a_public_address_without_token(client, settings):
    settings.DEBUG = False
    settings.METRICS_TOKEN = "scrape-secret"
    response = client.get("/metrics", **PUBLIC)
    assert response.status_code == 403
    assert b"aios_" not in response.content


def test_metrics_opens_to_the_token_from_anywhere(client, settings):
    settings.METRICS_TOKEN = "scrape-secret"
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret", **PUBLIC)
    assert response.status_code == 200
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer nope", **PUBLIC)
    assert wrong.status_code == 403


def test_no_token_configured_means_no_token_opens_it(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ", **PUBLIC).status_code == 403


def test_a_request_relayed_by_a_proxy_needs_the_token_even_from_loopback(client):
    response = client.get("/metrics", HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert response.status_code == 403


def test_allowed_networks_are_configurable(client, settings):
    settings.METRICS_ALLOWED_NETWORKS = ["203.0.113.0/24"]
    assert client.get("/metrics", **PUBLIC).status_code == 200
    assert client.get("/metrics").status_code == 403  # loopback no longer listed


MONITORING = "/api/v1/monitoring/"


def test_monitoring_api_is_routed_under_api_v1():
    assert reverse("monitoring-api") == MONITORING


def test_monitoring_api_asks_anonymous_clients_to_authenticate(client):
    response = client.get(MONITORING)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json() == {"detail": "Authentication credentials were not provided."}


@pytest.mark.django_db
def test_monitoring_api_refuses_non_staff_users(client, user):
    client.force_login(user)
    assert client.get(MONITORING).status_code == 403


@pytest.mark.django_db
def test_monitoring_api_answers_staff(client, staff_user, fresh_window):
    client.force_login(staff_user)
    response = client.get(MONITORING)
    assert response.status_code == 200
    assert set(response.json()["metrics"]) >= {
        "api_response_p95",
        "db_query_p95",
        "cache_hit_rate",
        "active_connections",
        "memory_usage_mb",
        "cpu_usage_percent",
    }


def test_monitoring_api_answers_the_token_and_refuses_a_wrong_one(client, settings, fresh_window):
    settings.MONITORING_TOKEN = "monitor-secret"
    ok = client.get(MONITORING, HTTP_AUTHORIZATION="Bearer monitor-secret", **PUBLIC)
    assert ok.status_code == 200
    assert "timestamp" in ok.json()
    wrong = client.get(MONITORING, HTTP_AUTHORIZATION="Bearer guess", **PUBLIC)
    assert wrong.status_code == 401


def test_monitoring_token_unset_opens_nothing(client, settings):
    settings.MONITORING_TOKEN = ""
    assert client.get(MONITORING, HTTP_AUTHORIZATION="Bearer x").status_code == 401


@pytest.mark.django_db
def test_staff_page_is_for_staff_only(client, user, staff_user, fresh_window):
    response = client.get("/staff/monitoring/")
    assert response.status_code == 302  # to the login page
    client.force_login(user)
    assert client.get("/staff/monitoring/").status_code == 302
    client.force_login(staff_user)
    response = client.get("/staff/monitoring/")
    assert response.status_code == 200
    html = response.content.decode()
    section = html[html.index('<section class="monitoring"') : html.index("</section>")]
    assert section.count("<svg") == 5  # one sparkline per chart
    assert "<script" not in section


@pytest.mark.django_db
def test_staff_page_shows_the_windows_figures(client, staff_user, fresh_window):
    from aios.monitoring import metrics, window

    for hit in (True, True, True, False):
        metrics.record_cache("lists", hit=hit)
    window.flush()
    client.force_login(staff_user)
    html = client.get("/staff/monitoring/").content.decode()
    assert "75.0 % of 4 look-ups hit" in html
    assert "<polyline" in html  # the hit-rate sparkline has a point


def test_monitoring_api_answers_other_methods_with_a_json_405(settings):
    settings.MONITORING_TOKEN = "t"
    client = Client(enforce_csrf_checks=True)
    response = client.post(MONITORING, HTTP_AUTHORIZATION="Bearer t")
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
    assert response.json() == {"detail": 'Method "POST" not allowed.'}


def test_probes_answer_head_requests(client):
    assert client.head("/healthz").status_code == 200
    assert client.post("/healthz").status_code == 405


@pytest.mark.django_db
def test_monitoring_api_answers_a_staff_users_api_token(client, user, staff_user, fresh_window):
    from rest_framework.authtoken.models import Token

    staff_key = Token.objects.create(user=staff_user).key
    response = client.get(MONITORING, HTTP_AUTHORIZATION=f"Token {staff_key}", **PUBLIC)
    assert response.status_code == 200
    assert "timestamp" in response.json()
    user_key = Token.objects.create(user=user).key
    response = client.get(MONITORING, HTTP_AUTHORIZATION=f"Token {user_key}", **PUBLIC)
    assert response.status_code == 403
    assert response.json() == {"detail": "Staff only."}
    response = client.get(MONITORING, HTTP_AUTHORIZATION="Token not-a-key", **PUBLIC)
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token."}
