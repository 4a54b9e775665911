"""Fixtures the security suites share: the seeded world and a token client of its owner."""

import pytest
from django.test import Client

from tests.helpers.seeded_world import seed


@pytest.fixture
def seeded():
    return seed()


@pytest.fixture
def api(seeded):
    """A client that raises nothing itself: a 500 shows as a 500, the way a user sees it."""
    client = Client(raise_request_exception=False, HTTP_ACCEPT_ENCODING="identity")
    client.defaults["HTTP_AUTHORIZATION"] = f"Token {seeded.tokens['owner']}"
    return client
