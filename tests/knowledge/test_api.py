import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from knowledge.models import KnowledgeEntry
from tests.factories import AgentFactory, KnowledgeEntryFactory
from tests.helpers.clients import signed_in

LIST = reverse("api:knowledge-entry-list")


def detail(entry) -> str:
    return reverse("api:knowledge-entry-detail", kwargs={"pk": entry.pk})


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_create_sets_the_owner_and_returns_the_entry(user, agent):
    body = {
        "title": "Prompt tips",
        "content_type": "snippet",
        "body": "Be specific.",
        "source_url": "https://example.com/tips",
        "agent": agent.pk,
        "tags": ["prompts", "tips", "prompts"],
    }
    response = signed_in(user).post(LIST, body, format="json")
    assert response.status_code == 201
    data = response.json()
    assert data["tags"] == ["prompts", "tips"]
    assert data["agent"] == agent.pk
    assert data["agent_detail"] == {"id": agent.pk, "slug": agent.slug, "name": agent.name}
    entry = KnowledgeEntry.objects.get(pk=data["id"])
    assert entry.user == user


def test_owner_field_cannot_be_chosen(user, other_user):
    response = signed_in(user).post(LIST, {"title": "t", "user": other_user.pk}, format="json")
    assert response.status_code == 400  # refused, not silently ignored
    assert response.json() == {"user": ["Unknown field."]}
    assert not KnowledgeEntry.objects.exists()


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "title"),
        ({"title": ""}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"title": "t", "content_type": "poem"}, "content_type"),
        ({"title": "t", "tags": "one,two"}, "tags"),
        ({"title": "t", "tags": ["not a slug"]}, "tags"),
        ({"title": "t", "tags": ["x" * 51]}, "tags"),
        ({"title": "t", "tags": [f"t{i}" for i in range(21)]}, "tags"),
        ({"title": "t", "tags": [1]}, "tags"),
        ({"title": "t", "agent": 999999}, "agent"),
        ({"title": "t", "agent": "abc"}, "agent"),
        ({"title": "t", "agent": 2**63}, "agent"),
        ({"title": "t", "agent": True}, "agent"),
        ({"title": "t", "source_url": "not a url"}, "source_url"),
        ({"title": 12}, "title"),
        ({"title": "t", "content_type": {}}, "content_type"),
        ({"title": "t", "source_url": 5}, "source_url"),
    ],
)
def test_invalid_entries_are_400_with_field_errors(user, db, body, field):
    response = signed_in(user).post(LIST, body, format="json")
    assert response.status_code == 400
    assert field in response.json()


def test_an_inactive_agent_cannot_be_linked(user, db):
    inactive = AgentFactory(is_active=False)
    response = signed_in(user).post(LIST, {"title": "t", "agent": inactive.pk}, format="json")
    assert response.status_code == 400


def test_list_shows_only_my_entries_most_recently_edited_first(user, other_user):
    mine = KnowledgeEntryFactory.create_batch(5, user=user)
    KnowledgeEntryFactory.create_batch(3, user=other_user)
    client = signed_in(user)
    seen, response = [], client.get(LIST, {"page_size": 2})
    while True:
        seen += ids(response)
        if not response.json()["next"]:
            break
        response = client.get(response.json()["next"])
    assert seen == [e.pk for e in sorted(mine, key=lambda e: (e.updated_at, e.pk), reverse=True)]


def test_filters_content_type_agent_and_q_combine(user, agent):
    wanted = KnowledgeEntryFactory(user=user, content_type="faq", agent=agent, title="Refunds")
    KnowledgeEntryFactory(user=user, content_type="faq", agent=agent, title="Shipping")
    KnowledgeEntryFactory(user=user, content_type="note", agent=agent, title="Refunds too")
    KnowledgeEntryFactory(user=user, content_type="faq", title="Refund policy")
    client = signed_in(user)
    params = {"content_type": "faq", "agent": agent.pk, "q": "refund"}
    assert ids(client.get(LIST, params)) == [wanted.pk]
    assert len(ids(client.get(LIST, {"q": "REFUND"}))) == 3
    assert len(ids(client.get(LIST, {"content_type": "faq"}))) == 3
    assert len(ids(client.get(LIST, {"agent": agent.pk}))) == 3


@pytest.mark.parametrize(
    "params, field",
    [
        ({"content_type": "poem"}, "content_type"),
        ({"agent": "abc"}, "agent"),
        ({"agent": "0"}, "agent"),
        ({"q": "x" * 201}, "q"),
        ({"page_size": "500"}, "page_size"),
        ({"cursor": "bogus"}, "cursor"),
    ],
)
def test_bad_filters_are_400(user, db, params, field):
    response = signed_in(user).get(LIST, params)
    assert response.status_code == 400
    assert field in response.json()


@pytest.mark.parametrize("page_size", [1, 100])
def test_list_query_count_is_pinned(user, agent, page_size, django_assert_num_queries):
    KnowledgeEntryFactory.create_batch(8, user=user, agent=agent)
    client = signed_in(user)
    with django_assert_num_queries(2):  # token, the page with agent names
        response = client.get(LIST, {"page_size": page_size, "content_type": "note"})
    assert len(ids(response)) == min(page_size, 8)


def test_detail_query_count_is_pinned(user, agent, django_assert_num_queries):
    entry = KnowledgeEntryFactory(user=user, agent=agent)
    client = signed_in(user)
    with django_assert_num_queries(2):
        assert client.get(detail(entry)).json()["agent_detail"]["id"] == agent.pk


def test_owner_can_update_patch_and_delete(user, agent):
    entry = KnowledgeEntryFactory(user=user, tags=["a"])
    client = signed_in(user)
    response = client.put(
        detail(entry), {"title": "New", "content_type": "link", "agent": agent.pk}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["title"] == "New" and response.json()["agent"] == agent.pk
    response = client.patch(detail(entry), {"tags": ["b", "c"], "agent": None}, format="json")
    assert response.json()["tags"] == ["b", "c"] and response.json()["agent"] is None
    assert client.delete(detail(entry)).status_code == 204
    assert not KnowledgeEntry.objects.exists()


@pytest.mark.parametrize("who", ["other_user", "staff_user"])
def test_someone_elses_entry_is_404_for_every_method(request, user, who):
    entry = KnowledgeEntryFactory(user=user, title="Private")
    client = signed_in(request.getfixturevalue(who))
    assert client.get(detail(entry)).status_code == 404
    assert client.put(detail(entry), {"title": "x"}, format="json").status_code == 404
    assert client.patch(detail(entry), {"title": "x"}, format="json").status_code == 404
    assert client.delete(detail(entry)).status_code == 404
    assert ids(client.get(LIST)) == []
    entry.refresh_from_db()
    assert entry.title == "Private"


def test_anonymous_gets_401_everywhere(user):
    entry = KnowledgeEntryFactory(user=user)
    client = APIClient()
    assert client.get(LIST).status_code == 401
    assert client.post(LIST, {"title": "t"}, format="json").status_code == 401
    assert client.get(detail(entry)).status_code == 401
    assert client.delete(detail(entry)).status_code == 401


@pytest.mark.parametrize("pk", [123456, 2**63, 10**30])
def test_unknown_entry_is_404(user, db, pk):
    client = signed_in(user)
    assert client.get(f"/api/v1/knowledge/entries/{pk}/").status_code == 404
    assert client.patch(f"/api/v1/knowledge/entries/{pk}/", {}, format="json").status_code == 404
    assert client.delete(f"/api/v1/knowledge/entries/{pk}/").status_code == 404


@pytest.mark.parametrize("agent", [str(2**63), "99999999999999999999999"])
def test_agent_filter_past_the_id_range_is_400(user, db, agent):
    response = signed_in(user).get(LIST, {"agent": agent})
    assert response.status_code == 400
    assert "agent" in response.json()
