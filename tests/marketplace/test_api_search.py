import pytest
from django.core.cache import cache
from django.urls import reverse
from rest_framework.test import APIClient

from marketplace.search import SEARCH_ORDERINGS
from tests.factories import AgentFactory, CategoryFactory

SEARCH = reverse("api:agent-search")


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def catalogue(db):
    writing, code = CategoryFactory(slug="writing"), CategoryFactory(slug="code")
    agents = {
        "exact": AgentFactory(name="Translator", category=writing, rating_average=1.0),
        "pro": AgentFactory(
            name="Translator Pro", category=writing, rating_average=5.0, install_count=900
        ),
        "tagline": AgentFactory(
            name="Polyglot", tagline="A translator for chat", category=code, rating_average=4.0
        ),
        "other": AgentFactory(name="Linter", tagline="Checks code", category=code),
    }
    for i in range(9):  # enough matches to need several pages
        agents[f"more{i}"] = AgentFactory(
            name=f"Helper {i}",
            tagline=f"Translator helper number {i}",
            category=code if i % 2 else writing,
            rating_average=3.0,
        )
    return agents


def ids(response):
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def walk(api, params, *, post=False):
    response = api.post(SEARCH, params, format="json") if post else api.get(SEARCH, params)
    seen = ids(response)
    while response.json()["next"]:
        response = api.get(response.json()["next"])
        seen += ids(response)
    return seen


def test_search_ranks_cards_with_a_score_and_facets(api, catalogue):
    body = api.get(SEARCH, {"q": "translator"}).json()
    assert set(body) == {"next", "previous", "results", "facets"}
    first = body["results"][0]
    assert first["id"] == catalogue["exact"].pk  # the exact name first, whatever its rating
    assert isinstance(first["score"], float)
    assert {"slug", "name", "category", "publisher", "rating_average", "url"} <= set(first)
    scores = [row["score"] for row in body["results"]]
    assert scores == sorted(scores, reverse=True)
    assert catalogue["other"].pk not in [row["id"] for row in body["results"]]
    assert {f["slug"]: f["count"] for f in body["facets"]} == {"writing": 7, "code": 5}


def test_get_and_post_return_the_same_results(api, catalogue):
    params = {"q": "translator", "category": "code", "min_rating": 1, "ordering": "-rating"}
    got = api.get(SEARCH, {**params, "page_size": 3}).json()
    posted = api.post(SEARCH, {**params, "page_size": 3}, format="json").json()
    assert got["results"] == posted["results"]
    assert got["facets"] == posted["facets"]
    assert got["next"] == posted["next"]  # POST's next link is the equivalent GET


@pytest.mark.parametrize("ordering", SEARCH_ORDERINGS)
@pytest.mark.parametrize("category", [None, "writing", "code"])
def test_every_ordering_and_category_keeps_the_query_and_pages_every_match_once(
    api, catalogue, ordering, category
):
    params = {"q": "translator", "ordering": ordering, "page_size": 2}
    if category:
        params["category"] = category
    seen = walk(api, params)
    matching = {
        a.pk
        for key, a in catalogue.items()
        if key != "other" and (category is None or a.category.slug == category)
    }
    assert len(seen) == len(set(seen))
    assert set(seen) == matching


def test_post_body_pages_through_get_links(api, catalogue):
    seen = walk(api, {"q": "translator", "page_size": 4}, post=True)
    assert len(seen) == 12 == len(set(seen))


def test_min_rating_applies_to_results_and_facets(api, catalogue):
    body = api.get(SEARCH, {"q": "translator", "min_rating": 4}).json()
    assert {row["id"] for row in body["results"]} == {
        catalogue["pro"].pk,
        catalogue["tagline"].pk,
    }
    assert {f["slug"]: f["count"] for f in body["facets"]} == {"writing": 1, "code": 1}


def test_category_filter_narrows_results_not_facets(api, catalogue):
    body = api.get(SEARCH, {"q": "translator", "category": "code"}).json()
    assert {row["category"]["slug"] for row in body["results"]} == {"code"}
    assert {f["slug"] for f in body["facets"]} == {"writing", "code"}


@pytest.mark.parametrize(
    "params, field",
    [
        ({}, "q"),
        ({"q": ""}, "q"),
        ({"q": "x" * 201}, "q"),
        ({"q": "a", "ordering": "-popularity"}, "ordering"),
        ({"q": "a", "min_rating": "5.5"}, "min_rating"),
        ({"q": "a", "min_rating": "-0.1"}, "min_rating"),
        ({"q": "a", "min_rating": "high"}, "min_rating"),
        ({"q": "a", "page_size": "0"}, "page_size"),
        ({"q": "a", "page_size": "1000"}, "page_size"),
        ({"q": "a", "page_size": "1.5"}, "page_size"),
        ({"q": "a", "cursor": "forged:cursor"}, "cursor"),
        ({"q": "a", "category": "No Slug!"}, "category"),
    ],
)
def test_bad_search_input_is_400_with_field_errors_on_get_and_post(api, db, params, field):
    for response in (api.get(SEARCH, params), api.post(SEARCH, params, format="json")):
        assert response.status_code == 400
        assert field in response.json()


@pytest.mark.parametrize(
    "body",
    [
        {"q": 5},
        {"q": ["translator"]},
        {"q": "a", "min_rating": [1]},
        {"q": "a", "page_size": {"n": 1}},
        {"q": "a", "min_rating": True},
        {"q": "a", "ordering": {}},
        {"q": "a", "category": ["x"]},
    ],
)
def test_wrong_json_types_are_400(api, db, body):
    response = api.post(SEARCH, body, format="json")
    assert response.status_code == 400, response.content


@pytest.mark.parametrize("raw", ["{not json", "[1, 2]", '"text"', "null", ""])
def test_malformed_or_non_object_json_is_400(api, db, raw):
    response = api.post(SEARCH, raw, content_type="application/json")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"


def test_form_encoded_body_is_415(api, db):
    response = api.post(SEARCH, "q=translator", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert "detail" in response.json()


def test_query_of_200_characters_is_accepted(api, db):
    assert api.get(SEARCH, {"q": "x" * 200}).status_code == 200


def test_search_tampered_cursor_is_400(api, catalogue):
    next_url = api.get(SEARCH, {"q": "translator", "page_size": 2}).json()["next"]
    assert api.get(next_url.replace("cursor=", "cursor=x")).status_code == 400


def test_search_is_two_queries_whatever_the_page_size(api, catalogue, django_assert_num_queries):
    AgentFactory.create_batch(20, tagline="Another translator")
    for size in (1, 50):
        cache.clear()
        with django_assert_num_queries(2):  # the page, the facets
            response = api.get(SEARCH, {"q": "translator", "page_size": size})
        assert response.status_code == 200
    # Another page of the same search reuses its facets (kept with the catalog).
    with django_assert_num_queries(1):
        assert api.get(SEARCH, {"q": "translator", "page_size": 7}).status_code == 200


@pytest.mark.postgres
def test_typo_finds_translator_agents_over_the_api(api, catalogue):
    found = ids(api.get(SEARCH, {"q": "tranlator"}))
    assert catalogue["exact"].pk in found and catalogue["pro"].pk in found
