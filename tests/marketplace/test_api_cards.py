"""The card serializer's written-out `to_representation` says exactly what DRF's generic path
over the declared fields says, for cards, search results and details."""

import datetime as dt

import pytest
from django.core.files.base import ContentFile
from django.test import RequestFactory
from django.urls import reverse, set_script_prefix
from rest_framework import serializers

from marketplace.api.serializers import (
    AgentCardSerializer,
    AgentDetailSerializer,
    SearchResultSerializer,
    _reversed,
)
from marketplace.models import Agent
from marketplace.search import search_agents
from tests.factories import AgentFactory, CategoryFactory, PublisherFactory, UserFactory

pytestmark = pytest.mark.django_db


def generic(serializer, instance):
    """What DRF's own Serializer.to_representation makes of the declared fields."""
    return dict(serializers.Serializer.to_representation(serializer, instance))


@pytest.fixture
def agents():
    verified = PublisherFactory(name="Verified Co", verified=True)
    made = [
        AgentFactory(
            name="Plain", publisher=verified, rating_average=3.25, rating_count=4, install_count=7
        ),
        AgentFactory(name="Star", is_featured=True, category=CategoryFactory(name="Ünïcode & Co")),
        AgentFactory(name='Quote "and" <tags>', tagline=""),
    ]
    made[0].icon.save("plain.webp", ContentFile(b"RIFF0000WEBP"), save=True)
    Agent.objects.filter(pk=made[1].pk).update(
        created_at=dt.datetime(2024, 2, 29, 23, 59, 59, 123456, tzinfo=dt.UTC)
    )
    return Agent.objects.listed().for_cards().order_by("pk")


@pytest.mark.parametrize("with_request", [True, False])
def test_cards_match_the_generic_path(agents, with_request):
    context = {"request": RequestFactory().get("/api/v1/")} if with_request else {}
    for agent in agents:
        serializer = AgentCardSerializer(context=context)
        fast = serializer.to_representation(agent)
        assert fast == generic(serializer, agent)
        assert list(fast) == AgentCardSerializer.Meta.fields  # same keys, same order
    assert any(AgentCardSerializer(a).data["icon"] for a in agents)


def test_search_results_and_details_match_the_generic_path(agents):
    user = UserFactory()
    request = RequestFactory().get("/")
    request.user = user
    for row in search_agents(q="plain"):
        serializer = SearchResultSerializer(context={"request": request})
        assert serializer.to_representation(row) == generic(serializer, row)
        assert "score" in serializer.to_representation(row)
    for agent in Agent.objects.listed().for_detail().for_viewer(user):
        serializer = AgentDetailSerializer(context={"request": request})
        fast = serializer.to_representation(agent)
        assert fast == generic(serializer, agent)
        assert list(fast) == AgentDetailSerializer.Meta.fields


@pytest.mark.parametrize("prefix", ["/", "/shop/", "/{odd}/"])
def test_reversed_urls_match_reverse(prefix):
    set_script_prefix(prefix)
    try:
        for pk in (1, 42, 2**62 + 1):
            assert _reversed("api:agent-detail", "pk", pk) == reverse(
                "api:agent-detail", kwargs={"pk": pk}
            )
        for slug in ("alpha", "a-b_c-1", "x" * 80):
            assert _reversed("agent-detail", "slug", slug) == reverse(
                "agent-detail", kwargs={"slug": slug}
            )
    finally:
        set_script_prefix("/")
