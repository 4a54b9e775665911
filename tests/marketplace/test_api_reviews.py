import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from marketplace import services
from marketplace.models import Review
from tests.factories import AgentFactory, UserFactory
from tests.helpers.clients import signed_in


def reviews_url(agent) -> str:
    return reverse("api:agent-reviews", kwargs={"pk": agent.pk})


def mine_url(agent) -> str:
    return reverse("api:my-review", kwargs={"pk": agent.pk})


def counters(agent) -> tuple:
    agent.refresh_from_db()
    return agent.rating_count, agent.rating_average, agent.rating_distribution


def test_create_review_is_201_and_updates_the_counters(agent, user):
    response = signed_in(user).post(
        reviews_url(agent), {"rating": 4, "title": "Good", "body": "Works."}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    assert body["rating"] == 4 and body["title"] == "Good"
    assert body["author"]["username"] == user.username
    assert counters(agent) == (1, 4.0, {1: 0, 2: 0, 3: 0, 4: 1, 5: 0})


def test_a_second_review_is_409(agent, user):
    client = signed_in(user)
    client.post(reviews_url(agent), {"rating": 4}, format="json")
    response = client.post(reviews_url(agent), {"rating": 2}, format="json")
    assert response.status_code == 409
    assert "detail" in response.json()
    assert counters(agent)[0] == 1


@pytest.mark.parametrize(
    "body, field",
    [
        ({"rating": 0}, "rating"),
        ({"rating": 6}, "rating"),
        ({"rating": 3.5}, "rating"),
        ({"rating": "five"}, "rating"),
        ({"rating": True}, "rating"),
        ({}, "rating"),
        ({"rating": 3, "title": "x" * 121}, "title"),
        ({"rating": 3, "body": ["a"]}, "body"),
        ({"rating": 3, "title": 7}, "title"),
    ],
)
def test_invalid_review_is_400_with_a_field_error(agent, user, body, field):
    response = signed_in(user).post(reviews_url(agent), body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not Review.objects.exists()


def test_anonymous_cannot_review(agent):
    response = APIClient().post(reviews_url(agent), {"rating": 5}, format="json")
    assert response.status_code == 401


def test_reviewing_an_unknown_or_inactive_agent_is_404(user, db):
    client = signed_in(user)
    assert (
        client.post("/api/v1/agents/424242/reviews/", {"rating": 5}, format="json").status_code
        == 404
    )
    inactive = AgentFactory(is_active=False)
    assert client.post(reviews_url(inactive), {"rating": 5}, format="json").status_code == 404
    assert APIClient().get(reviews_url(inactive)).status_code == 404


def test_review_list_shows_visible_reviews_latest_first_in_pages(agent, db):
    reviews = [
        services.create_review(user=UserFactory(), agent=agent, rating=r, title=f"T{i}")
        for i, r in enumerate([5, 4, 3, 2, 1, 5, 4])
    ]
    services.set_review_hidden(review=reviews[2], hidden=True)
    client = APIClient()
    seen, response = [], client.get(reviews_url(agent), {"page_size": 2})
    while True:
        assert response.status_code == 200
        seen += [row["title"] for row in response.json()["results"]]
        if not response.json()["next"]:
            break
        response = client.get(response.json()["next"])
    assert seen == ["T6", "T5", "T4", "T3", "T1", "T0"]


@pytest.mark.parametrize("page_size", [1, 50])
def test_review_list_query_count_is_pinned(agent, page_size, django_assert_num_queries):
    for _ in range(5):
        services.create_review(user=UserFactory(), agent=agent, rating=5)
    with django_assert_num_queries(2):  # the agent exists, the page with authors
        response = APIClient().get(reviews_url(agent), {"page_size": page_size})
    assert len(response.json()["results"]) == min(page_size, 5)


def test_mine_get_put_patch_delete(agent, user):
    client = signed_in(user)
    assert client.get(mine_url(agent)).status_code == 404
    client.post(reviews_url(agent), {"rating": 2, "title": "Meh", "body": "b"}, format="json")
    assert client.get(mine_url(agent)).json()["title"] == "Meh"

    response = client.put(mine_url(agent), {"rating": 5}, format="json")
    assert response.status_code == 200
    assert response.json()["rating"] == 5 and response.json()["title"] == ""
    assert counters(agent) == (1, 5.0, {1: 0, 2: 0, 3: 0, 4: 0, 5: 1})

    response = client.patch(mine_url(agent), {"title": "Great"}, format="json")
    assert response.json()["title"] == "Great" and response.json()["rating"] == 5

    response = client.patch(mine_url(agent), {"rating": 3}, format="json")
    assert response.json()["rating"] == 3
    assert counters(agent) == (1, 3.0, {1: 0, 2: 0, 3: 1, 4: 0, 5: 0})

    assert client.delete(mine_url(agent)).status_code == 204
    assert counters(agent) == (1 - 1, 0.0, {1: 0, 2: 0, 3: 0, 4: 0, 5: 0})
    assert client.delete(mine_url(agent)).status_code == 404


@pytest.mark.parametrize("method", ["put", "patch"])
@pytest.mark.parametrize("body", [{"rating": 9}, {"rating": 0}, {"rating": "x"}])
def test_mine_rejects_bad_ratings(agent, user, method, body):
    client = signed_in(user)
    client.post(reviews_url(agent), {"rating": 4}, format="json")
    response = getattr(client, method)(mine_url(agent), body, format="json")
    assert response.status_code == 400
    assert "rating" in response.json()
    assert counters(agent)[1] == 4.0


def test_put_needs_a_rating(agent, user):
    client = signed_in(user)
    client.post(reviews_url(agent), {"rating": 4}, format="json")
    assert client.put(mine_url(agent), {"title": "t"}, format="json").status_code == 400


def test_mine_is_only_ever_my_own(agent, user, other_user, staff_user):
    signed_in(other_user).post(reviews_url(agent), {"rating": 1, "title": "Bob's"}, format="json")
    for client in (signed_in(user), signed_in(staff_user)):
        assert client.get(mine_url(agent)).status_code == 404
        assert client.patch(mine_url(agent), {"rating": 5}, format="json").status_code == 404
        assert client.delete(mine_url(agent)).status_code == 404
    assert Review.objects.get().rating == 1


def test_mine_needs_a_user(agent):
    client = APIClient()
    for method in ("get", "put", "patch", "delete"):
        assert getattr(client, method)(mine_url(agent)).status_code == 401


def test_review_counters_have_no_drift_after_api_traffic(agent, user, other_user):
    signed_in(user).post(reviews_url(agent), {"rating": 5}, format="json")
    signed_in(other_user).post(reviews_url(agent), {"rating": 1}, format="json")
    signed_in(user).patch(mine_url(agent), {"rating": 2}, format="json")
    signed_in(other_user).delete(mine_url(agent))
    assert services.find_counter_drift([agent.pk]) == []
    assert counters(agent)[:2] == (1, 2.0)


@pytest.mark.parametrize("pk", [0, 987654, 2**63, 10**30])
def test_unknown_agent_ids_are_404_on_every_review_endpoint(user, db, pk):
    client = signed_in(user)
    assert client.get(f"/api/v1/agents/{pk}/reviews/").status_code == 404
    assert (
        client.post(f"/api/v1/agents/{pk}/reviews/", {"rating": 5}, format="json").status_code
        == 404
    )
    for method in ("get", "delete"):
        assert getattr(client, method)(f"/api/v1/agents/{pk}/reviews/mine/").status_code == 404
    response = client.patch(f"/api/v1/agents/{pk}/reviews/mine/", {"rating": 5}, format="json")
    assert response.status_code == 404


@pytest.mark.parametrize("pk", [0, 987654, 2**63, 10**30])
def test_unknown_agent_ids_are_404_for_install(user, db, pk):
    client = signed_in(user)
    assert client.post(f"/api/v1/agents/{pk}/install/").status_code == 404
    assert client.delete(f"/api/v1/agents/{pk}/install/").status_code == 404
    assert client.get(f"/api/v1/agents/{pk}/").status_code == 404


def test_a_review_is_three_statements_in_one_transaction(
    user, monkeypatch, django_assert_num_queries
):
    monkeypatch.setattr("aios.authentication.CLOCK_MARGIN", -60.0)  # trust a new version
    first, second = AgentFactory(), AgentFactory()
    client = signed_in(user)
    review = {"rating": 4, "title": "Good", "body": "Works."}
    assert client.post(reviews_url(first), review, format="json").status_code == 201
    with django_assert_num_queries(5) as captured:
        assert client.post(reviews_url(second), review, format="json").status_code == 201
    sql = [query["sql"] for query in captured.captured_queries]
    # The agent, INSERT ... ON CONFLICT, the counters' UPDATE ... RETURNING; the service's
    # transaction is a savepoint inside the test's (BEGIN / COMMIT otherwise).
    assert [s.split()[0] for s in sql] == ["SELECT", "SAVEPOINT", "INSERT", "UPDATE", "RELEASE"]
    assert "ON CONFLICT" in sql[2]
