"""Invalidation is precise: a write retires what can show it and leaves the rest warm.

The matrix (test_caching_invalidation.py) proves nothing is ever stale; these tests prove the
other half, that an install or a review does not empty the whole cache: a warm copy the
write cannot affect still answers with no query. Runs on real Redis and on the file cache.
"""

import pytest
from django.test import Client

from marketplace import services
from tests.factories import AgentFactory, CategoryFactory, UserFactory
from tests.helpers.clients import token_client

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _never_stale(settings):
    """These tests pin what each write retires at once: counters included (staleness 0)."""
    settings.COUNTER_STALENESS = 0


class Shop:
    """Writing: alpha, beta. Coding: gamma (featured). A reader with alpha installed."""

    def __init__(self):
        self.writing = CategoryFactory(name="Writing")
        self.coding = CategoryFactory(name="Coding")
        self.alpha = AgentFactory(name="Alpha", slug="alpha", category=self.writing)
        self.beta = AgentFactory(name="Beta", slug="beta", category=self.writing)
        self.gamma = AgentFactory(
            name="Gamma", slug="gamma", category=self.coding, is_featured=True
        )
        self.reader = UserFactory(username="reader")
        self.carol = UserFactory(username="carol")
        services.install_agent(user=self.reader, agent=self.alpha)
        self.api = token_client(self.reader)
        self.anon = Client()


@pytest.fixture
def shop(cache_backend, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return Shop()


def warm(client, url):
    for _ in range(3):  # a copy whose dependencies the view discovers is stored on the 2nd
        assert client.get(url).status_code == 200


def installs_shown(response, slug) -> int | None:
    rows = response.json()["results"]
    for row in rows:
        card = row.get("agent", row)
        if card["slug"] == slug:
            return card["install_count"]
    return None


def write(django_capture_on_commit_callbacks, action):
    with django_capture_on_commit_callbacks(execute=True):
        action()


WRITING = "/api/v1/marketplace/agents/?category=writing"
CODING = "/api/v1/marketplace/agents/?category=coding"
FEATURED = "/api/v1/marketplace/agents/featured/"
CATEGORIES = "/api/v1/marketplace/categories/"
ALL = "/api/v1/marketplace/agents/"
MINE = "/api/v1/me/installations/"


def test_an_install_leaves_other_categories_featured_and_counts_warm(
    shop, django_capture_on_commit_callbacks, django_assert_num_queries
):
    for url in (WRITING, CODING, FEATURED, CATEGORIES, ALL, "/agents/?category=coding"):
        warm(shop.anon, url)

    write(
        django_capture_on_commit_callbacks,
        lambda: services.install_agent(user=shop.carol, agent=shop.beta),
    )

    for url in (CODING, FEATURED, CATEGORIES, "/agents/?category=coding"):
        with django_assert_num_queries(0):
            assert shop.anon.get(url).status_code == 200, url
    # What shows beta's counter is recomputed and shows the install.
    assert installs_shown(shop.anon.get(WRITING), "beta") == 1
    assert installs_shown(shop.anon.get(ALL), "beta") == 1


def test_an_install_of_a_featured_agent_retires_featured_and_its_category_only(
    shop, django_capture_on_commit_callbacks, django_assert_num_queries
):
    for url in (WRITING, CODING, FEATURED):
        warm(shop.anon, url)

    write(
        django_capture_on_commit_callbacks,
        lambda: services.install_agent(user=shop.carol, agent=shop.gamma),
    )

    with django_assert_num_queries(0):
        assert shop.anon.get(WRITING).status_code == 200
    assert installs_shown(shop.anon.get(FEATURED), "gamma") == 1
    assert installs_shown(shop.anon.get(CODING), "gamma") == 1


def test_my_installations_follow_the_agents_on_the_page_only(
    shop, django_capture_on_commit_callbacks, django_assert_num_queries
):
    warm(shop.api, MINE)

    # Somebody else installs an agent the reader does not have: the reader's copy stays.
    write(
        django_capture_on_commit_callbacks,
        lambda: services.install_agent(user=shop.carol, agent=shop.gamma),
    )
    with django_assert_num_queries(0):
        assert installs_shown(shop.api.get(MINE), "alpha") == 1

    # ... installs alpha, which the reader's page shows: the copy is retired.
    write(
        django_capture_on_commit_callbacks,
        lambda: services.install_agent(user=shop.carol, agent=shop.alpha),
    )
    assert installs_shown(shop.api.get(MINE), "alpha") == 2


def test_a_review_text_edit_leaves_the_listings_warm(
    shop, django_capture_on_commit_callbacks, django_assert_num_queries
):
    with django_capture_on_commit_callbacks(execute=True):
        review = services.create_review(user=shop.carol, agent=shop.alpha, rating=4, title="A")
    for url in (WRITING, ALL):
        warm(shop.anon, url)

    write(
        django_capture_on_commit_callbacks,
        lambda: services.update_review(review=review, title="Still a four"),
    )
    for url in (WRITING, ALL):
        with django_assert_num_queries(0):
            assert shop.anon.get(url).status_code == 200
    reviews = shop.anon.get(f"/api/v1/agents/{shop.alpha.pk}/reviews/").json()["results"]
    assert [r["title"] for r in reviews] == ["Still a four"]

    # A rating change moves the counters: the listings follow.
    write(
        django_capture_on_commit_callbacks,
        lambda: services.update_review(review=review, rating=1),
    )
    cards = {c["slug"]: c for c in shop.anon.get(WRITING).json()["results"]}
    assert cards["alpha"]["rating_average"] == 1.0


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/marketplace/agents/?category=writing%20",  # the API trims it: all of writing
    ],
)
def test_a_listing_whose_view_reads_another_category_than_the_query_follows_every_agent(
    shop, django_capture_on_commit_callbacks, url
):
    warm(shop.anon, url)
    before = shop.anon.get(url).content
    write(
        django_capture_on_commit_callbacks,
        lambda: services.install_agent(user=shop.carol, agent=shop.beta),
    )
    after = shop.anon.get(url).content
    assert after != before


def test_a_search_retired_by_an_install_keeps_its_facets_and_an_edit_recounts_them(
    shop, django_capture_on_commit_callbacks, django_assert_num_queries
):
    url = "/api/v1/agents/search/?q=alpha"
    warm(shop.anon, url)
    write(
        django_capture_on_commit_callbacks,
        lambda: services.install_agent(user=shop.carol, agent=shop.alpha),
    )
    with django_assert_num_queries(1):  # the page; the facets come from the catalog's copy
        response = shop.anon.get(url)
    body = response.json()
    assert installs_shown(response, "alpha") == 2  # the reader's install and carol's
    assert body["facets"] == [{"slug": "writing", "name": "Writing", "count": 1, "capped": False}]

    # An edit that changes what matches retires the facets with the catalog.
    with django_capture_on_commit_callbacks(execute=True):
        shop.gamma.name = "Alpha Gamma"
        shop.gamma.save()
    facets = shop.anon.get(url).json()["facets"]
    assert sorted((f["slug"], f["count"]) for f in facets) == [("coding", 1), ("writing", 1)]
