"""Cards rendered by marketplace/api/lean.py say exactly what the card serializer's generic DRF
path says, on edge cases, odd script prefixes among them."""

import datetime as dt

import pytest
from django.core.files.base import ContentFile
from django.test import RequestFactory
from django.urls import set_script_prefix
from rest_framework.renderers import JSONRenderer

from aios.renderers import LeanJSONRenderer
from marketplace.api import lean
from marketplace.api.serializers import AgentCardSerializer
from marketplace.models import Agent
from tests.factories import AgentFactory, CategoryFactory, PublisherFactory

pytestmark = pytest.mark.django_db


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


def same_bytes(lean_data, serializer_data) -> bool:
    """The lean renderer's bytes for `lean_data` are DRF's JSONRenderer's for the serializer's."""
    return LeanJSONRenderer().render(lean_data) == JSONRenderer().render(serializer_data)


@pytest.mark.parametrize("prefix", ["/", "/shop/", "/{odd}/"])
def test_lean_cards_are_what_the_card_serializer_writes(agents, prefix):
    """Odd names, a unicode category, an icon, a microsecond timestamp, an empty tagline,
    a script prefix: lean.cards writes what DRF's generic path writes for the card."""
    request = RequestFactory().get("/api/v1/")
    set_script_prefix(prefix)
    try:
        rows = list(agents.card_rows())
        expected = AgentCardSerializer(agents, many=True, context={"request": request}).data
        assert same_bytes(lean.cards(rows, request), expected)
    finally:
        set_script_prefix("/")
    assert any(card["icon"] for card in lean.cards(rows, request))
