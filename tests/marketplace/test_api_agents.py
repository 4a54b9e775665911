import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from marketplace import services
from marketplace.managers import AGENT_ORDERINGS
from marketplace.models import Agent
from tests.factories import (
    AgentFactory,
    CategoryFactory,
    PublisherFactory,
    ReviewFactory,
    UserFactory,
    bulk_agents,
)
from tests.helpers.clients import signed_in

LIST = reverse("api:agent-list")


@pytest.fixture
def api():
    return APIClient()


def ids(response) -> list[int]:
    return [row["id"] for row in response.json()["results"]]


def walk(client, url, params=None) -> list[int]:
    """Every id from the first page on, following `next`."""
    seen, response = [], client.get(url, params or {})
    while True:
        assert response.status_code == 200, response.content
        seen += ids(response)
        if response.json()["next"] is None:
            return seen
        response = client.get(response.json()["next"])


@pytest.fixture
def shelf(db):
    """Two categories, two publishers, tags, ratings and installs that differ and tie."""
    writing, code = CategoryFactory(slug="writing"), CategoryFactory(slug="code")
    acme, solo = PublisherFactory(slug="acme"), PublisherFactory(slug="solo", verified=False)
    agents = []
    for i in range(12):
        agents.append(
            AgentFactory(
                name=f"Agent {i:02d}",
                category=writing if i % 2 else code,
                publisher=acme if i % 3 else solo,
                tags=["nlp"] if i % 4 == 0 else ["ops"],
                rating_average=[4.5, 4.5, 3.0, 0.0][i % 4],
                install_count=[10, 10, 500, 0][i % 4],
                is_featured=i % 5 == 0,
            )
        )
    AgentFactory(name="Retired", category=writing, is_active=False, rating_average=5.0)
    return agents


def test_list_returns_active_agent_cards_with_the_public_fields(api, shelf):
    response = api.get(LIST)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"next", "previous", "results"}
    assert len(body["results"]) == 12
    card = body["results"][0]
    for field in (
        "id", "slug", "name", "tagline", "category", "publisher", "rating_average",
        "rating_count", "install_count", "is_featured", "created_at", "url",
    ):  # fmt: skip
        assert field in card
    assert set(card["category"]) == {"slug", "name"}
    assert set(card["publisher"]) == {"slug", "name", "verified"}
    assert card["url"].endswith(reverse("api:agent-detail", kwargs={"pk": card["id"]}))
    assert "Retired" not in [row["name"] for row in body["results"]]


def test_default_order_is_rating_then_newest_id(api, shelf):
    expected = list(Agent.objects.listed().ordered("-rating").values_list("id", flat=True))
    assert ids(api.get(LIST)) == expected


FILTERS = {
    "category": ("writing", lambda a: a.category.slug == "writing"),
    "featured": ("true", lambda a: a.is_featured),
    "publisher": ("solo", lambda a: a.publisher.slug == "solo"),
    "tag": ("nlp", lambda a: "nlp" in a.tags),
    "min_rating": ("4", lambda a: a.rating_average >= 4),
}


@pytest.mark.parametrize("ordering", list(AGENT_ORDERINGS))
@pytest.mark.parametrize("name", list(FILTERS))
def test_every_filter_with_every_ordering_walks_all_matches_once(api, shelf, name, ordering):
    value, keep = FILTERS[name]
    seen = walk(api, LIST, {name: value, "ordering": ordering, "page_size": 2})
    expected_qs = Agent.objects.listed().filter(pk__in=[a.pk for a in shelf if keep(a)])
    assert seen == list(expected_qs.ordered(ordering).values_list("id", flat=True))
    assert seen  # the filter matched something, so the test can fail


def test_filters_combine(api, shelf):
    response = api.get(LIST, {"category": "writing", "publisher": "acme", "min_rating": 4})
    expected = {
        a.pk
        for a in shelf
        if a.category.slug == "writing" and a.publisher.slug == "acme" and a.rating_average >= 4
    }
    assert set(ids(response)) == expected and expected


def test_featured_false_lists_the_others(api, shelf):
    assert set(ids(api.get(LIST, {"featured": "false"}))) == {
        a.pk for a in shelf if not a.is_featured
    }


def test_unknown_category_or_publisher_is_a_400_naming_it(api, shelf):
    response = api.get(LIST, {"category": "nope"})
    assert response.status_code == 400
    assert response.json() == {"category": ["Unknown category “nope”."]}
    response = api.get(LIST, {"publisher": "nope"})
    assert response.json() == {"publisher": ["Unknown publisher “nope”."]}


def test_a_category_with_no_listed_agents_is_an_empty_list(api, shelf):
    CategoryFactory(slug="empty-shelf")
    response = api.get(LIST, {"category": "empty-shelf"})
    assert response.status_code == 200
    assert response.json()["results"] == []


@pytest.mark.parametrize(
    "params, field",
    [
        ({"ordering": "-popularity"}, "ordering"),
        ({"min_rating": "6"}, "min_rating"),
        ({"min_rating": "-1"}, "min_rating"),
        ({"min_rating": "lots"}, "min_rating"),
        ({"min_rating": "nan"}, "min_rating"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "101"}, "page_size"),
        ({"page_size": "100000000000000000000"}, "page_size"),
        ({"page_size": "ten"}, "page_size"),
        ({"featured": "maybe"}, "featured"),
        ({"category": "not a slug"}, "category"),
        ({"cursor": "tampered"}, "cursor"),
        ({"cursor": ""}, "cursor"),
        ({"cursor": "e30:not-the-signature"}, "cursor"),
    ],
)
def test_bad_parameters_are_400_with_field_errors(api, shelf, params, field):
    response = api.get(LIST, params)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert field in response.json()


def test_pages_link_both_ways_in_body_and_link_header(api, shelf):
    first = api.get(LIST, {"page_size": 5, "category": "writing"})
    assert first.json()["previous"] is None
    next_url = first.json()["next"]
    assert "category=writing" in next_url and "page_size=5" in next_url
    assert first["Link"] == f'<{next_url}>; rel="next"'
    second = api.get(next_url)
    prev_url = second.json()["previous"]
    assert f'<{prev_url}>; rel="prev"' in second["Link"]
    assert ids(api.get(prev_url)) == ids(first)


def test_cursor_of_another_ordering_is_400(api, shelf):
    next_url = api.get(LIST, {"page_size": 2, "ordering": "name"}).json()["next"]
    response = api.get(next_url.replace("ordering=name", "ordering=-installs"))
    assert response.status_code == 400
    assert "cursor" in response.json()


def test_walking_next_visits_every_agent_once_with_many_ties(api, db):
    bulk_agents(230, name="Tied", rating_average=4.0, install_count=3)
    for ordering in AGENT_ORDERINGS:
        seen = walk(api, LIST, {"ordering": ordering, "page_size": 17})
        assert len(seen) == 230 == len(set(seen))


@pytest.mark.parametrize("page_size", [1, 20, 100])
def test_list_is_one_query_whatever_the_page_size(api, shelf, page_size, django_assert_num_queries):
    AgentFactory.create_batch(30, category=shelf[0].category)
    # The category's existence (marketplace.filters), then the page: no COUNT, no per-card query.
    with django_assert_num_queries(2):
        response = api.get(LIST, {"page_size": page_size, "category": "code", "tag": "nlp"})
    assert response.status_code == 200


def test_list_deep_page_is_one_query(api, shelf, django_assert_num_queries):
    next_url = api.get(LIST, {"page_size": 3}).json()["next"]
    with django_assert_num_queries(1):
        assert api.get(next_url).status_code == 200


def test_signed_in_list_adds_only_the_token_lookup(shelf, user, django_assert_num_queries):
    client = signed_in(user)
    with django_assert_num_queries(2):
        assert client.get(LIST).status_code == 200


# --- featured, categories, stats --------------------------------------------------------------


def test_featured_lists_only_active_featured_agents(api, shelf):
    AgentFactory(is_featured=True, is_active=False)
    response = api.get(reverse("api:agent-featured"))
    assert set(ids(response)) == {a.pk for a in shelf if a.is_featured}


def test_featured_is_one_query(api, shelf, django_assert_num_queries):
    with django_assert_num_queries(1):
        api.get(reverse("api:agent-featured"), {"ordering": "-installs"})


def test_categories_carry_listed_agent_counts_in_one_query(api, shelf, django_assert_num_queries):
    CategoryFactory(slug="empty")
    with django_assert_num_queries(1):
        response = api.get(reverse("api:category-list"))
    counts = {row["slug"]: row["agent_count"] for row in response.json()["results"]}
    assert counts == {"writing": 6, "code": 6, "empty": 0}


def test_categories_page_with_a_cursor(api, db):
    CategoryFactory.create_batch(7)
    seen = walk(api, reverse("api:category-list"), {"page_size": 3})
    assert len(seen) == 7 == len(set(seen))


def test_stats_report_the_stored_counters(api, shelf, django_assert_num_queries):
    with django_assert_num_queries(2):
        response = api.get(reverse("api:stats"))
    body = response.json()
    assert body["total_agents"] == 13
    assert body["active_agents"] == 12
    assert body["featured_agents"] == sum(a.is_featured for a in shelf)
    assert body["total_installations"] == sum(a.install_count for a in shelf)
    assert set(body["rating_distribution"]) == {"1", "2", "3", "4", "5"}
    assert body["top_agents"][0]["install_count"] == 500
    assert {c["slug"] for c in body["categories"]} == {"writing", "code"}


# --- detail -----------------------------------------------------------------------------------


def detail_url(agent) -> str:
    return reverse("api:agent-detail", kwargs={"pk": agent.pk})


@pytest.fixture
def reviewed(agent):
    """`agent` with seven reviews through the services, so its counters are exact."""
    for i, rating in enumerate([5, 5, 4, 3, 1, 5, 2]):
        services.create_review(
            user=UserFactory(first_name=f"First{i}", last_name="Last"),
            agent=agent,
            rating=rating,
            title=f"Review {i}",
        )
    agent.refresh_from_db()
    return agent


def test_detail_shows_card_text_links_distribution_and_five_latest_reviews(api, reviewed):
    body = api.get(detail_url(reviewed)).json()
    assert body["id"] == reviewed.pk
    assert body["description"] == reviewed.description
    for field in ("version", "tags", "homepage_url", "source_url"):
        assert field in body
    assert body["rating_distribution"] == {"1": 1, "2": 1, "3": 1, "4": 1, "5": 3}
    assert [r["title"] for r in body["recent_reviews"]] == [f"Review {i}" for i in (6, 5, 4, 3, 2)]
    assert body["recent_reviews"][0]["author"]["name"] == "First6 Last"
    assert body["is_installed"] is None
    assert body["my_review"] is None


def test_detail_hides_hidden_reviews(api, reviewed):
    latest = reviewed.reviews.order_by("-created_at", "-id").first()
    services.set_review_hidden(review=latest, hidden=True)
    titles = [r["title"] for r in api.get(detail_url(reviewed)).json()["recent_reviews"]]
    assert latest.title not in titles
    assert len(titles) == 5


def test_detail_for_a_signed_in_user_shows_their_state(reviewed, user):
    client = signed_in(user)
    assert client.get(detail_url(reviewed)).json()["is_installed"] is False
    services.install_agent(user=user, agent=reviewed)
    services.create_review(user=user, agent=reviewed, rating=4, title="Mine")
    body = client.get(detail_url(reviewed)).json()
    assert body["is_installed"] is True
    assert body["my_review"]["title"] == "Mine"
    assert body["my_review"]["rating"] == 4


def test_detail_does_not_leak_another_users_state(reviewed, user, other_user):
    services.install_agent(user=other_user, agent=reviewed)
    ReviewFactory(user=other_user, agent=reviewed)
    body = signed_in(user).get(detail_url(reviewed)).json()
    assert body["is_installed"] is False
    assert body["my_review"] is None


def test_detail_query_counts_are_pinned(reviewed, user, django_assert_num_queries):
    anonymous = APIClient()
    with django_assert_num_queries(2):  # agent, five latest reviews with authors
        assert anonymous.get(detail_url(reviewed)).status_code == 200
    client = signed_in(user)
    # token, agent with is_installed (EXISTS), latest reviews, the user's review
    with django_assert_num_queries(4):
        assert client.get(detail_url(reviewed)).status_code == 200


@pytest.mark.parametrize("pk", [0, 999999, 10**30])
def test_unknown_agent_is_a_json_404(api, db, pk):
    response = api.get(f"/api/v1/agents/{pk}/")
    assert response.status_code == 404
    assert set(response.json()) == {"detail"}


def test_inactive_agent_detail_is_404(api, db):
    agent = AgentFactory(is_active=False)
    assert api.get(detail_url(agent)).status_code == 404
