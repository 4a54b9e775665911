"""Tokens remembered per process (aios.authentication): no query while the credentials stay,
a refusal on the next request once they change (on the configured cache: Redis or files)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed

from aios import authentication, response_cache
from aios.authentication import CachedTokenAuthentication

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _forget_tokens():
    authentication.forget_all()
    yield
    authentication.forget_all()


@pytest.fixture
def token(user, monkeypatch):
    token = Token.objects.create(user=user)
    # The user's namespace as it would be a while after their last change: a version made
    # just now might belong to a change the lookup did not see, and is not trusted yet.
    monkeypatch.setattr(authentication, "CLOCK_MARGIN", -60.0)
    return token


def _queries(key):
    with CaptureQueriesContext(connection) as queries:
        user, token = CachedTokenAuthentication().authenticate_credentials(key)
    return len(queries), user, token


def test_a_token_is_looked_up_once_then_remembered(token, user):
    assert _queries(token.key)[0] == 1
    count, found, found_token = _queries(token.key)
    assert count == 0
    assert (found.pk, found.username, found.is_active) == (user.pk, user.username, True)
    assert (found_token.key, found_token.user_id, found_token.created) == (
        token.key,
        user.pk,
        token.created,
    )


def test_each_request_gets_its_own_user_instance(token):
    _queries(token.key)
    _, first, _ = _queries(token.key)
    first.username = "changed in one request"
    _, second, _ = _queries(token.key)
    assert second is not first and second.username == "alice"


def test_a_deleted_token_is_refused_on_the_next_request(token, django_capture_on_commit_callbacks):
    key = token.key
    _queries(key)
    with django_capture_on_commit_callbacks(execute=True):
        token.delete()
    with pytest.raises(AuthenticationFailed):
        _queries(key)


def test_a_deactivated_user_is_refused_on_the_next_request(
    token, user, django_capture_on_commit_callbacks
):
    _queries(token.key)
    with django_capture_on_commit_callbacks(execute=True):
        user.is_active = False
        user.save()
    with pytest.raises(AuthenticationFailed):
        _queries(token.key)


def test_a_change_during_the_lookup_is_not_remembered(token, user, monkeypatch):
    monkeypatch.setattr(authentication, "CLOCK_MARGIN", 0.0)
    looked_up = []
    parent = authentication.TokenAuthentication.authenticate_credentials

    def lookup_then_change(self, key):
        looked_up.append(key)
        found = parent(self, key)
        response_cache.bump([response_cache.user_ns(user.pk)])  # e.g. a password change
        return found

    monkeypatch.setattr(
        authentication.TokenAuthentication, "authenticate_credentials", lookup_then_change
    )
    _queries(token.key)
    _queries(token.key)
    assert len(looked_up) == 2


def test_without_the_shared_cache_every_request_asks_the_database(token, monkeypatch):
    monkeypatch.setattr(response_cache, "versions", lambda *args, **kwargs: ({}, {}))
    assert [_queries(token.key)[0] for _ in range(3)] == [1, 1, 1]


def test_an_unknown_token_is_refused_as_drf_refuses_it(db):
    with pytest.raises(AuthenticationFailed, match="Invalid token"):
        _queries("0" * 40)


def test_the_schema_still_describes_token_authentication(client):
    schema = client.get("/api/schema/?format=json").json()
    assert schema["components"]["securitySchemes"]["tokenAuth"]["name"] == "Authorization"
