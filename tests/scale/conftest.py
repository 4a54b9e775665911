"""Real processes in the production shape past one machine: app instances behind HAProxy, the
edge cache (Varnish) in front. Started once per module (a few seconds each); the tests commit
their rows (`transactional_db`) and the cache is emptied between tests as everywhere."""

import re
from types import SimpleNamespace

import pytest
import requests
from django.test import Client

from tests.helpers.seeded_world import PASSWORD

TIMEOUT = 15  # seconds a test waits for any one answer: longer counts as a hang


def session_cookies(user) -> dict:
    """A signed-in browser's cookies for `user` (the session is in the shared database)."""
    client = Client()
    client.force_login(user)
    return {name: morsel.value for name, morsel in client.cookies.items()}


def csrf_token(html: str) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert found, "no CSRF token in the form"
    return found.group(1)


def sign_in(session: requests.Session, base: str, username: str) -> SimpleNamespace:
    """The login form, as a browser fills it: (the form's answer, the sign-in's answer)."""
    form = session.get(f"{base}/accounts/login/", timeout=TIMEOUT)
    signed_in = session.post(
        f"{base}/accounts/login/",
        data={
            "username": username,
            "password": PASSWORD,
            "csrfmiddlewaretoken": csrf_token(form.text),
        },
        headers={"Referer": f"{base}/accounts/login/"},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    return SimpleNamespace(form=form, signed_in=signed_in)


@pytest.fixture
def world(transactional_db):
    """Committed rows the servers see: agents, users with the seeded password, tokens."""
    from tests.helpers.seeded_world import seed

    return seed()
