"""The lean read paths (values() rows -> marketplace/api/lean.py -> orjson) answer the bytes the
DRF serializers wrote for the same rows, and the shape the OpenAPI schema declares."""

import datetime as dt
from collections import OrderedDict
from urllib.parse import urlsplit

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse
from jsonschema import FormatChecker
from openapi_schema_validator import OAS30Validator
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIClient

from aios.renderers import LeanJSONRenderer, lean_float
from knowledge.api.serializers import KnowledgeEntrySerializer
from knowledge.models import KnowledgeEntry
from marketplace import services
from marketplace.api.serializers import (
    AgentCardSerializer,
    AgentDetailSerializer,
    InstallationSerializer,
    ReviewSerializer,
    SearchResultSerializer,
)
from marketplace.models import Agent, Installation, Review
from marketplace.search import search_agents
from tests.factories import (
    AgentFactory,
    CategoryFactory,
    KnowledgeEntryFactory,
    PublisherFactory,
    ReviewFactory,
    UserFactory,
)
from tests.helpers.clients import signed_in

pytestmark = pytest.mark.django_db

ODD = 'Ünïcode "quoted" <b>\u2028line\u2029para\x01 😀'
WHEN = dt.datetime(2024, 2, 29, 23, 59, 59, 123456, tzinfo=dt.UTC)


FORMATS = FormatChecker()


@FORMATS.checks("uri")
def _uri(value) -> bool:  # "" is not a URI: blankable URLs match exactly one oneOf branch
    return not isinstance(value, str) or bool(urlsplit(value).scheme)


@pytest.fixture
def schema(db):
    return APIClient().get("/api/schema/", {"format": "json"}).json()


@pytest.fixture
def viewer():
    return UserFactory(first_name="Ada", last_name="Lovelace")


@pytest.fixture
def agents(viewer):
    verified = PublisherFactory(name=ODD, verified=True)
    category = CategoryFactory(name=ODD)
    made = [
        AgentFactory(
            name="Translator Plain",
            tagline=ODD,
            category=category,
            publisher=verified,
            rating_average=10 / 3,
            rating_count=3,
            install_count=7,
            tags=["a", "b-c"],
            homepage_url="https://example.com/x",
            published_at=WHEN,
        ),
        AgentFactory(name="Translator Star", is_featured=True, category=category),
        AgentFactory(name="Translator Quiet", tagline="", category=category, rating_average=0),
    ]
    made[0].icon.save("plain.webp", ContentFile(b"RIFF0000WEBP"), save=True)
    Agent.objects.filter(pk=made[1].pk).update(created_at=WHEN)
    for agent in made:
        services.install_agent(user=viewer, agent=agent)
    services.create_review(user=viewer, agent=made[0], rating=4, title=ODD, body="b")
    ReviewFactory(agent=made[0], user=UserFactory(first_name="", last_name=""), rating=2)
    Review.objects.filter(user=viewer).update(is_hidden=True)  # the viewer still sees it
    KnowledgeEntryFactory(user=viewer, agent=made[0], title=ODD, tags=["x"])
    KnowledgeEntryFactory(user=viewer, agent=None, source_url="https://example.com/k")
    return made


def drf_page(response, results) -> bytes:
    """What DRF rendered for the page: the same links around the serializer's results."""
    body = response.json()
    page = OrderedDict([("next", body["next"]), ("previous", body["previous"])])
    page["results"] = results
    extra = {k: v for k, v in body.items() if k not in page}
    return JSONRenderer().render({**page, **extra})


def ctx(response) -> dict:
    request = response.wsgi_request
    request.user = getattr(request, "user", None)
    return {"request": request}


def deref(node, doc):
    """The schema node behind $ref and a one-item allOf (how drf-spectacular writes nullables)."""
    while True:
        if "$ref" in node:
            target = doc
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            node = target
        elif len(node.get("allOf", ())) == 1:
            node = node["allOf"][0]
        else:
            return node


def assert_shape(instance, node, doc, where="$"):
    """Every object holds exactly the properties its schema declares, all the way down."""
    if instance is None:
        return
    node = deref(node, doc)
    if isinstance(instance, dict) and "properties" in node:
        assert list(instance) == list(node["properties"]), where
        for key, value in instance.items():
            assert_shape(value, node["properties"][key], doc, f"{where}.{key}")
    elif isinstance(instance, list) and "items" in node:
        for i, item in enumerate(instance):
            assert_shape(item, node["items"], doc, f"{where}[{i}]")


def nullable_refs(node):
    """`{allOf: [$ref], nullable: true}` (drf-spectacular's nullable reference) as an anyOf
    with null: OpenAPI 3.0 validators apply the allOf, which refuses the null it allows."""
    if isinstance(node, list):
        return [nullable_refs(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = {k: nullable_refs(v) for k, v in node.items()}
    if node.get("nullable") and "allOf" in node:
        return {"anyOf": [*node.pop("allOf"), {"enum": [None]}], **node}
    return node


def check_schema(schema, path, method, response, status="200"):
    op = schema["paths"][path][method]
    node = op["responses"][status]["content"]["application/json"]["schema"]
    body = response.json()
    document = nullable_refs({**node, "components": schema["components"]})
    validator = OAS30Validator(document, format_checker=FORMATS)
    validator.validate(body)
    assert_shape(body, node, schema)


def test_agent_list_is_what_the_card_serializer_wrote(schema, agents):
    response = APIClient().get(reverse("api:agent-list"), {"page_size": 2, "ordering": "name"})
    rows = Agent.objects.for_cards().in_bulk([a["id"] for a in response.json()["results"]])
    fresh = [rows[a["id"]] for a in response.json()["results"]]
    expected = AgentCardSerializer(fresh, many=True, context=ctx(response)).data
    assert response.content == drf_page(response, expected)
    assert response["Content-Type"] == "application/json"
    assert response.json()["next"] and "Link" in response
    check_schema(schema, "/api/v1/marketplace/agents/", "get", response)
    following = APIClient().get(response.json()["next"])
    assert following.json()["previous"]  # the cursor the lean rows made still walks
    assert [a["id"] for a in following.json()["results"]] == [agents[1].pk]


def test_featured_list_is_what_the_card_serializer_wrote(schema, agents):
    response = APIClient().get(reverse("api:agent-featured"))
    expected = AgentCardSerializer(
        [Agent.objects.for_cards().get(pk=agents[1].pk)], many=True, context=ctx(response)
    ).data
    assert response.content == drf_page(response, expected)
    check_schema(schema, "/api/v1/marketplace/agents/featured/", "get", response)


@pytest.mark.parametrize("as_viewer", [False, True])
def test_agent_detail_is_what_the_detail_serializer_wrote(schema, agents, viewer, as_viewer):
    client = signed_in(viewer) if as_viewer else APIClient()
    response = client.get(reverse("api:agent-detail", kwargs={"pk": agents[0].pk}))
    context = ctx(response)
    agent = Agent.objects.listed().for_detail().for_viewer(context["request"].user)
    expected = AgentDetailSerializer(agent.get(pk=agents[0].pk), context=context).data
    assert response.content == JSONRenderer().render(expected)
    body = response.json()
    assert body["published_at"] and body["icon"] and len(body["recent_reviews"]) == 1
    assert (body["my_review"] is not None) is as_viewer
    check_schema(schema, "/api/v1/agents/{id}/", "get", response)


def test_my_installations_are_what_the_installation_serializer_wrote(schema, agents, viewer):
    response = signed_in(viewer).get(reverse("api:my-installations"))
    mine = Installation.objects.for_user(viewer).with_agent_cards()
    expected = InstallationSerializer(mine, many=True, context=ctx(response)).data
    assert response.content == drf_page(response, expected)
    check_schema(schema, "/api/v1/me/installations/", "get", response)


def test_search_page_is_what_the_result_serializer_wrote(schema, agents):
    response = APIClient().get(reverse("api:agent-search"), {"q": "translator"})
    scored = {a.pk: a for a in search_agents(q="translator")}
    rows = [scored[a["id"]] for a in response.json()["results"]]
    assert len(rows) == 3
    expected = SearchResultSerializer(rows, many=True, context=ctx(response)).data
    assert response.content == drf_page(response, expected)
    check_schema(schema, "/api/v1/agents/search/", "get", response)


def test_review_list_is_what_the_review_serializer_wrote(schema, agents):
    response = APIClient().get(reverse("api:agent-reviews", kwargs={"pk": agents[0].pk}))
    expected = ReviewSerializer(Review.objects.for_agent(agents[0]), many=True).data
    assert response.content == drf_page(response, expected)
    check_schema(schema, "/api/v1/agents/{id}/reviews/", "get", response)


def test_knowledge_list_is_what_the_entry_serializer_wrote(schema, agents, viewer):
    response = signed_in(viewer).get(reverse("api:knowledge-entry-list"))
    entries = KnowledgeEntry.objects.owned_by(viewer).for_api().order_by("-updated_at", "-id")
    expected = KnowledgeEntrySerializer(entries, many=True, context=ctx(response)).data
    assert response.content == drf_page(response, expected)
    assert {e["agent_detail"] is None for e in response.json()["results"]} == {True, False}
    check_schema(schema, "/api/v1/knowledge/entries/", "get", response)


def test_install_answer_is_what_the_installation_serializer_wrote(schema, agents):
    user = UserFactory()
    response = signed_in(user).post(reverse("api:agent-install", kwargs={"pk": agents[0].pk}))
    assert response.status_code == 201
    installation = Installation.objects.with_agent_cards().get(user=user)
    expected = InstallationSerializer(installation, context=ctx(response)).data
    assert response.content == JSONRenderer().render(expected)
    assert response.json()["agent"]["install_count"] == installation.agent.install_count
    check_schema(schema, "/api/v1/agents/{id}/install/", "post", response, status="201")


@pytest.mark.parametrize("named", [True, False])
def test_review_answer_is_what_the_review_serializer_wrote(schema, agents, named):
    user = UserFactory(first_name=ODD if named else "", last_name="")
    response = signed_in(user).post(
        reverse("api:agent-reviews", kwargs={"pk": agents[0].pk}),
        {"rating": 4, "title": ODD, "body": ODD},
        format="json",
    )
    assert response.status_code == 201
    review = Review.objects.with_author().get(user=user)
    assert response.content == JSONRenderer().render(ReviewSerializer(review).data)
    check_schema(schema, "/api/v1/agents/{id}/reviews/", "post", response, status="201")


@pytest.mark.parametrize(
    "value", [1e-05, -2.5e-07, 1e-4, 3.3333333333333335, 0.0, 1e16, 123456789.125, 5e-324]
)
def test_lean_floats_are_written_as_drf_writes_them(value):
    data = {"x": lean_float(value), "s": ODD, "when": WHEN}
    drf = JSONRenderer().render({**data, "when": "2024-02-29T23:59:59.123456Z"})
    assert LeanJSONRenderer().render(data) == drf
