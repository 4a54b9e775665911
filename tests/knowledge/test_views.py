import re

import pytest
from django.urls import reverse

from knowledge.models import KnowledgeEntry
from marketplace import services
from tests.factories import AgentFactory, KnowledgeEntryFactory

pytestmark = pytest.mark.django_db


def _titles(response) -> list[str]:
    return re.findall(r'class="entry-title"><a href="[^"]+">([^<]+)<', response.content.decode())


def test_list_needs_login(client):
    response = client.get(reverse("knowledge-list"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_list_shows_only_my_entries(client, user, other_user):
    KnowledgeEntryFactory(user=user, title="My note")
    KnowledgeEntryFactory(user=other_user, title="Their note")
    client.force_login(user)
    assert _titles(client.get(reverse("knowledge-list"))) == ["My note"]


def test_list_filters_by_type_and_search(client, user):
    KnowledgeEntryFactory(user=user, title="Refund policy", content_type="faq")
    KnowledgeEntryFactory(user=user, title="Refund script", content_type="snippet")
    KnowledgeEntryFactory(user=user, title="Holidays", content_type="faq", body="about refunds")
    client.force_login(user)

    assert _titles(client.get(reverse("knowledge-list"), {"type": "snippet"})) == ["Refund script"]
    found = _titles(client.get(reverse("knowledge-list"), {"type": "faq", "q": "refund"}))
    assert sorted(found) == ["Holidays", "Refund policy"]
    html = client.get(reverse("knowledge-list"), {"q": "nothing-like-this"}).content.decode()
    assert "No entries match" in html


def test_list_with_an_unknown_type_is_400_not_500(client, user):
    client.force_login(user)
    response = client.get(reverse("knowledge-list"), {"type": "bogus"})
    assert response.status_code == 400
    assert "field-error" in response.content.decode()


def test_list_pages_and_query_count_does_not_grow(client, user, django_assert_num_queries):
    KnowledgeEntryFactory.create_batch(5, user=user)
    client.force_login(user)
    with django_assert_num_queries(3):  # session, user, one page
        client.get(reverse("knowledge-list"))
    KnowledgeEntryFactory.create_batch(30, user=user)
    with django_assert_num_queries(3):
        first = client.get(reverse("knowledge-list"))
    assert len(_titles(first)) == 20
    next_url = re.search(r'rel="next" href="([^"]+)"', first.content.decode()).group(1)
    second = client.get(reverse("knowledge-list") + next_url.replace("&amp;", "&"))
    assert len(_titles(second)) == 15


def test_create_edit_and_delete_an_entry(client, user):
    agent = AgentFactory(name="Helper")
    services.install_agent(user=user, agent=agent)
    client.force_login(user)

    response = client.post(
        reverse("knowledge-create"),
        {
            "title": "Onboarding",
            "content_type": "document",
            "body": "## Steps\n\n1. Sign in",
            "source_url": "",
            "agent": agent.pk,
            "tags": "hr, onboarding, hr",
        },
    )
    entry = KnowledgeEntry.objects.get()
    assert response["Location"] == entry.get_absolute_url()
    assert (entry.user, entry.agent, entry.tags) == (user, agent, ["hr", "onboarding"])
    page = client.get(entry.get_absolute_url()).content.decode()
    assert "<h2>Steps</h2>" in page

    edit_url = reverse("knowledge-update", kwargs={"pk": entry.pk})
    assert 'value="hr, onboarding"' in client.get(edit_url).content.decode()
    client.post(edit_url, {"title": "Onboarding v2", "content_type": "note", "tags": ""})
    entry.refresh_from_db()
    assert (entry.title, entry.content_type, entry.tags, entry.agent) == (
        "Onboarding v2",
        "note",
        [],
        None,
    )

    delete_url = reverse("knowledge-delete", kwargs={"pk": entry.pk})
    assert client.get(delete_url).status_code == 200  # a confirmation page, nothing deleted
    assert KnowledgeEntry.objects.exists()
    assert client.post(delete_url)["Location"] == reverse("knowledge-list")
    assert not KnowledgeEntry.objects.exists()


def test_invalid_entry_comes_back_filled_in(client, user):
    client.force_login(user)
    response = client.post(
        reverse("knowledge-create"),
        {"title": "", "content_type": "note", "body": "Keep me", "source_url": "not a url"},
    )
    html = response.content.decode()
    assert response.status_code == 400
    assert "Keep me</textarea>" in html and 'value="not a url"' in html
    assert html.count('class="field-error"') == 2  # title and source link
    assert not KnowledgeEntry.objects.exists()


@pytest.mark.parametrize(
    ("tags", "error"),
    [
        ("hr, on boarding", "“on boarding” is not a tag"),
        ("x" * 51, "Each tag is at most 50 characters."),
        (", ".join(f"t{i}" for i in range(21)), "At most 20 tags."),
    ],
)
def test_the_form_refuses_tags_the_api_would(client, user, tags, error):
    client.force_login(user)
    response = client.post(
        reverse("knowledge-create"), {"title": "t", "content_type": "note", "tags": tags}
    )
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not KnowledgeEntry.objects.exists()


def test_tags_saved_from_the_page_survive_an_api_round_trip(client, user):
    client.force_login(user)
    client.post(
        reverse("knowledge-create"),
        {"title": "Runbook", "content_type": "note", "tags": "on-call, HR_2, on-call"},
    )
    entry = KnowledgeEntry.objects.get()
    url = reverse("api:knowledge-entry-detail", kwargs={"pk": entry.pk})
    read = client.get(url).json()
    assert read["tags"] == ["on-call", "HR_2"]
    body = {k: read[k] for k in ("title", "content_type", "body", "source_url", "agent", "tags")}
    response = client.put(url, body, content_type="application/json")
    assert response.status_code == 200, response.content
    assert response.json()["tags"] == read["tags"]


def test_agent_choice_is_limited_to_my_installed_agents(client, user):
    AgentFactory(name="Not installed")
    client.force_login(user)
    html = client.get(reverse("knowledge-create")).content.decode()
    assert "Not installed" not in html


def test_other_users_entries_are_404_everywhere(client, user, other_user):
    entry = KnowledgeEntryFactory(user=other_user, title="Private")
    client.force_login(user)
    for name in ("knowledge-detail", "knowledge-update", "knowledge-delete"):
        url = reverse(name, kwargs={"pk": entry.pk})
        assert client.get(url).status_code == 404
        assert client.post(url, {"title": "Hijacked", "content_type": "note"}).status_code in (
            404,
            405,
        )
    entry.refresh_from_db()
    assert entry.title == "Private"


def test_stored_script_in_an_entry_never_reaches_the_page(client, user):
    entry = KnowledgeEntryFactory(
        user=user,
        title="<script>alert(1)</script>",
        body="<script>alert(2)</script>\n\n[x](javascript:alert(3))",
    )
    client.force_login(user)
    for url in (entry.get_absolute_url(), reverse("knowledge-list")):
        html = client.get(url).content.decode()
        assert "<script>alert" not in html
        assert "javascript:" not in html
