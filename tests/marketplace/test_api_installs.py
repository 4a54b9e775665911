import pytest
from django.urls import reverse
from django.utils.crypto import get_random_string
from rest_framework.test import APIClient

from marketplace import services
from marketplace.models import Agent, Installation
from tests.factories import AgentFactory
from tests.helpers.clients import signed_in


def install_url(agent) -> str:
    return reverse("api:agent-install", kwargs={"pk": agent.pk})


MINE = reverse("api:my-installations")


def test_install_is_201_then_200_and_counts_once(agent, user):
    client = signed_in(user)
    first = client.post(install_url(agent))
    assert first.status_code == 201
    assert first.json()["agent"]["id"] == agent.pk
    assert first.json()["agent"]["install_count"] == 1
    again = client.post(install_url(agent))
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    agent.refresh_from_db()
    assert agent.install_count == 1
    assert Installation.objects.filter(user=user, agent=agent).count() == 1


def test_uninstall_is_204_and_idempotent(agent, user):
    client = signed_in(user)
    client.post(install_url(agent))
    assert client.delete(install_url(agent)).status_code == 204
    assert client.delete(install_url(agent)).status_code == 204  # not installed: still 204
    agent.refresh_from_db()
    assert agent.install_count == 0
    assert not Installation.objects.filter(user=user, agent=agent).exists()


def test_each_user_counts_separately(agent, user, other_user):
    signed_in(user).post(install_url(agent))
    signed_in(other_user).post(install_url(agent))
    signed_in(other_user).delete(install_url(agent))
    agent.refresh_from_db()
    assert agent.install_count == 1


def test_anonymous_cannot_install_or_uninstall(agent):
    client = APIClient()
    for response in (client.post(install_url(agent)), client.delete(install_url(agent))):
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Token")
    assert not Installation.objects.exists()


def test_installing_an_unknown_or_inactive_agent_is_404(user, db):
    client = signed_in(user)
    inactive = AgentFactory(is_active=False)
    assert client.post(install_url(inactive)).status_code == 404
    assert client.post("/api/v1/agents/987654/install/").status_code == 404
    assert client.delete("/api/v1/agents/987654/install/").status_code == 404


def test_a_retired_agent_can_still_be_uninstalled(agent, user):
    client = signed_in(user)
    client.post(install_url(agent))
    services.set_agents_flag(agent_ids=[agent.pk], is_active=False)
    assert client.delete(install_url(agent)).status_code == 204
    assert not Installation.objects.filter(user=user).exists()


def test_session_writes_need_the_csrf_token(agent, user):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post(install_url(agent))
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


def test_session_writes_with_csrf_work(agent, user):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    secret = get_random_string(32)  # what the site's csrftoken cookie holds
    client.cookies["csrftoken"] = secret
    assert client.post(install_url(agent), HTTP_X_CSRFTOKEN=secret).status_code == 201
    client.cookies["csrftoken"] = get_random_string(32)
    assert client.post(install_url(agent), HTTP_X_CSRFTOKEN=secret).status_code == 403


def test_my_installations_lists_mine_latest_first(user, other_user, db):
    agents = AgentFactory.create_batch(5)
    for agent in agents:
        services.install_agent(user=user, agent=agent)
    services.install_agent(user=other_user, agent=AgentFactory())
    client = signed_in(user)
    seen, response = [], client.get(MINE, {"page_size": 2})
    while True:
        seen += [row["agent"]["id"] for row in response.json()["results"]]
        if not response.json()["next"]:
            break
        response = client.get(response.json()["next"])
    assert seen == [a.pk for a in reversed(agents)]


def test_my_installations_need_a_user(db):
    assert APIClient().get(MINE).status_code == 401


@pytest.mark.parametrize("page_size", [1, 100])
def test_my_installations_query_count_is_pinned(user, page_size, django_assert_num_queries):
    for agent in AgentFactory.create_batch(6):
        services.install_agent(user=user, agent=agent)
    client = signed_in(user)
    with django_assert_num_queries(2):  # token, the page with agent cards
        response = client.get(MINE, {"page_size": page_size})
    assert response.status_code == 200
    assert len(response.json()["results"]) == min(page_size, 6)


def test_an_install_is_four_statements_in_one_transaction(
    user, monkeypatch, django_assert_num_queries
):
    monkeypatch.setattr("aios.authentication.CLOCK_MARGIN", -60.0)  # trust a new version
    installed, fresh = AgentFactory(), AgentFactory()
    client = signed_in(user)
    assert client.post(install_url(installed)).status_code == 201  # the token is now known
    # The agent, INSERT ... ON CONFLICT, the counters' UPDATE ... RETURNING, the card; the
    # service's transaction is a savepoint inside the test's (BEGIN / COMMIT otherwise).
    with django_assert_num_queries(6) as captured:
        assert client.post(install_url(fresh)).status_code == 201
    savepoints = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("SAVEPOINT")]
    assert len(savepoints) == 1
    # Installed already: the agent, the INSERT that did nothing, the agent still active, the
    # existing row, its card.
    with django_assert_num_queries(7):
        assert client.post(install_url(fresh)).status_code == 200


def test_install_counter_matches_rows_after_api_traffic(user, other_user, db):
    agent = AgentFactory()
    for client in (signed_in(user), signed_in(other_user)):
        client.post(install_url(agent))
        client.post(install_url(agent))
    signed_in(user).delete(install_url(agent))
    assert (
        Agent.objects.get(pk=agent.pk).install_count
        == Installation.objects.filter(agent=agent).count()
    )
    assert services.find_counter_drift([agent.pk]) == []
