"""Sign-in brute force is throttled per account and per address, on the site and the API."""

import pytest
from django.test import RequestFactory
from django.urls import reverse

from aios import throttling
from tests.factories import UserFactory

PASSWORD = "correct horse battery staple"
TOKEN_URL = "/api/v1/auth/token/"


@pytest.fixture
def limits(settings):
    settings.LOGIN_FAILURES_PER_ACCOUNT = 3
    settings.LOGIN_FAILURES_PER_ADDRESS = 5
    settings.LOGIN_THROTTLE_WINDOW = 600
    return settings


def _login(client, username, password, address="10.0.0.1"):
    return client.post(
        reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address
    )


def _token(client, username, password, address="10.0.0.1"):
    return client.post(
        TOKEN_URL,
        {"username": username, "password": password},
        content_type="application/json",
        REMOTE_ADDR=address,
    )


@pytest.mark.django_db
def test_site_login_locks_an_account_after_repeated_failures(client, user, limits):
    for _ in range(3):
        assert _login(client, user.username, "wrong").status_code == 200
    response = _login(client, user.username, PASSWORD, address="10.9.9.9")
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 601
    assert "Too many failed sign-in attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session  # even the right password is refused


@pytest.mark.django_db
def test_site_login_locks_an_address_guessing_many_accounts(client, user, limits):
    for n in range(5):
        assert _login(client, f"nobody{n}", "wrong").status_code == 200
    assert _login(client, user.username, PASSWORD).status_code == 429
    # The same account from elsewhere is fine: only that address is throttled.
    assert _login(client, user.username, PASSWORD, address="10.0.0.2").status_code == 302


@pytest.mark.django_db
def test_a_successful_login_clears_the_account_count_but_not_the_address_count(
    client, user, limits
):
    for _ in range(2):
        _login(client, user.username, "wrong")
    assert _login(client, user.username, PASSWORD).status_code == 302
    client.logout()
    for _ in range(2):
        assert _login(client, user.username, "wrong").status_code == 200
    assert _login(client, user.username, PASSWORD).status_code == 302  # 2 + 2 > 3: cleared
    client.logout()
    # The address has 4 failures and keeps them: one more locks it.
    _login(client, "someone-else", "wrong")
    assert _login(client, user.username, PASSWORD).status_code == 429


@pytest.mark.django_db
def test_account_names_are_counted_case_and_space_insensitively(client, user, limits):
    for name in ("ALICE", " alice", "Alice "):
        _login(client, name, "wrong", address="10.1.1.1")
    assert _login(client, "alice", PASSWORD, address="10.2.2.2").status_code == 429


@pytest.mark.django_db
def test_api_token_endpoint_answers_429_with_retry_after_once_throttled(client, user, limits):
    for _ in range(3):
        assert _token(client, user.username, "wrong").status_code == 400
    response = _token(client, user.username, PASSWORD, address="10.9.9.9")
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert "token" not in response.json()


@pytest.mark.django_db
def test_api_token_endpoint_throttles_an_address_and_issues_tokens_otherwise(client, limits):
    UserFactory(username="carol")
    assert _token(client, "carol", PASSWORD).status_code == 200
    for n in range(5):
        _token(client, f"nobody{n}", "wrong")
    assert _token(client, "carol", PASSWORD).status_code == 429
    response = _token(client, "carol", PASSWORD, address="10.3.3.3")
    assert response.status_code == 200
    assert response.json()["token"]


@pytest.mark.django_db
def test_site_and_api_share_one_count(client, user, limits):
    _login(client, user.username, "wrong")
    _token(client, user.username, "wrong")
    _login(client, user.username, "wrong")
    assert _token(client, user.username, PASSWORD, address="10.5.5.5").status_code == 429


@pytest.mark.django_db
def test_a_cache_outage_skips_throttling_instead_of_refusing_sign_in(
    client, user, limits, monkeypatch
):
    def broken(*args, **kwargs):
        raise ConnectionError("cache down")

    for name in ("get_many", "add", "incr", "set", "delete_many"):
        monkeypatch.setattr(throttling.cache, name, broken)
    for _ in range(5):
        assert _login(client, user.username, "wrong").status_code == 200
    assert _login(client, user.username, PASSWORD).status_code == 302


def test_ipv6_clients_are_counted_by_their_64_bit_prefix():
    factory = RequestFactory()
    one = factory.get("/", REMOTE_ADDR="2001:db8:1:2::1")
    two = factory.get("/", REMOTE_ADDR="2001:db8:1:2:ffff::9")
    other = factory.get("/", REMOTE_ADDR="2001:db8:1:3::1")
    assert throttling.client_address(one) == throttling.client_address(two) == "2001:db8:1:2::/64"
    assert throttling.client_address(other) != throttling.client_address(one)
    assert throttling.client_address(factory.get("/", REMOTE_ADDR="10.0.0.7")) == "10.0.0.7"


# --- API rates ---------------------------------------------------------------------------------


@pytest.fixture
def api_rates(settings):
    from rest_framework.settings import api_settings
    from rest_framework.throttling import SimpleRateThrottle

    rates = {"anon": "3/min", "user": "5/min", "search": "1000/min"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    api_settings.reload()
    # DRF reads the rates into a class attribute at import time.
    original = SimpleRateThrottle.THROTTLE_RATES
    SimpleRateThrottle.THROTTLE_RATES = rates
    from django.core.cache import cache

    cache.clear()
    yield rates
    SimpleRateThrottle.THROTTLE_RATES = original
    api_settings.reload()


URL = "/api/v1/marketplace/categories/?page_size=3"


@pytest.mark.django_db
def test_anonymous_clients_get_the_anon_rate_and_signed_in_ones_the_user_rate(
    client, api_rates, settings
):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    settings.CACHE_ENABLED = False  # every request runs its view and its throttles
    codes = [client.get(URL).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]  # the anon rate, 3/min

    user = UserFactory()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    codes = [api.get(URL).status_code for _ in range(6)]
    assert codes == [200] * 5 + [429]  # the user rate, 5/min, not the address's anon count


@pytest.mark.django_db
def test_a_client_cannot_pick_a_fresh_api_count_by_sending_x_forwarded_for(
    client, api_rates, settings
):
    settings.CACHE_ENABLED = False
    settings.TRUSTED_PROXIES = []  # and behind trusted proxies, only they extend the header
    codes = [client.get(URL, HTTP_X_FORWARDED_FOR=f"10.9.9.{n}").status_code for n in range(4)]
    assert codes == [200, 200, 200, 429]


def test_the_user_rate_ignores_anonymous_requests():
    from django.contrib.auth.models import AnonymousUser
    from rest_framework.request import Request

    request = Request(RequestFactory().get("/"))
    request.user = AnonymousUser()
    throttle = throttling.SignedInRateThrottle()
    assert all(throttle.allow_request(request, None) for _ in range(10_000))
