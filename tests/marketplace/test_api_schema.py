"""OpenAPI schema, Swagger UI, JSON errors, throttling, and a client generated from the schema."""

import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.test import RequestFactory
from openapi_spec_validator import validate
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from aios.api import errors
from tests.factories import AgentFactory, CategoryFactory, UserFactory
from tests.helpers.clients import signed_in

SCHEMA = "/api/schema/"
METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture
def schema(db):
    response = APIClient().get(SCHEMA, {"format": "json"})
    assert response.status_code == 200
    return response.json()


def operations(schema):
    for path, item in schema["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def test_schema_is_valid_openapi_3(schema):
    assert schema["openapi"].startswith("3.")
    validate(schema)


def test_schema_generates_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "s.yaml"))


def test_every_public_path_of_the_issue_is_documented(schema):
    expected = {
        "/api/v1/marketplace/agents/": {"get"},
        "/api/v1/marketplace/agents/featured/": {"get"},
        "/api/v1/marketplace/categories/": {"get"},
        "/api/v1/marketplace/stats/": {"get"},
        "/api/v1/agents/{id}/": {"get"},
        "/api/v1/agents/search/": {"get", "post"},
        "/api/v1/agents/{id}/install/": {"post", "delete"},
        "/api/v1/me/installations/": {"get"},
        "/api/v1/agents/{id}/reviews/": {"get", "post"},
        "/api/v1/agents/{id}/reviews/mine/": {"get", "put", "patch", "delete"},
        "/api/v1/knowledge/entries/": {"get", "post"},
        "/api/v1/knowledge/entries/{id}/": {"get", "put", "patch", "delete"},
        "/api/v1/auth/token/": {"post"},
    }
    for path, methods in expected.items():
        assert set(schema["paths"][path]) & set(METHODS) == methods, path


def test_every_operation_declares_its_error_responses(schema):
    for path, method, op in operations(schema):
        codes = set(op["responses"])
        where = f"{method.upper()} {path}"
        assert "429" in codes, where
        if "{id}" in path:
            assert "404" in codes, where
        if "requestBody" in op or any(p["in"] == "query" for p in op.get("parameters", [])):
            assert "400" in codes, where
        if {} not in op.get("security", [{}]):  # signing in is required
            assert "401" in codes, where
        for code, response in op["responses"].items():
            if code == "414":  # gunicorn's, before the app: HTML (aios.api.errors)
                assert set(response["content"]) == {"text/html"}, where
            elif code.startswith("4"):
                assert "application/json" in response["content"], (where, code)


def test_request_bodies_are_json_only(schema):
    for path, method, op in operations(schema):
        if "requestBody" in op:
            assert set(op["requestBody"]["content"]) == {"application/json"}, (method, path)


def test_lists_document_the_cursor_page(schema):
    op = schema["paths"]["/api/v1/marketplace/agents/"]["get"]
    names = {p["name"] for p in op["parameters"]}
    assert {
        "cursor",
        "page_size",
        "category",
        "featured",
        "publisher",
        "tag",
        "min_rating",
    } <= names
    assert {"ordering"} <= names
    ref = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    page = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert set(page["properties"]) == {"next", "previous", "results"}


def test_swagger_ui_is_served_with_local_assets(db):
    response = APIClient().get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn." not in html and "unpkg" not in html
    assert finders.find("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    assert finders.find("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css")


# --- JSON errors everywhere under /api/ --------------------------------------------------------


def test_unknown_api_path_is_a_json_404(db):
    response = APIClient().get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


def test_unknown_site_path_stays_html(client, db):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert "application/json" not in response["Content-Type"]


def test_wrong_method_is_a_json_405(db):
    response = APIClient().put("/api/v1/marketplace/agents/", {}, format="json")
    assert response.status_code == 405
    assert "detail" in response.json()


def test_server_error_under_api_is_json_and_html_elsewhere():
    request = RequestFactory().get("/api/v1/marketplace/agents/")
    response = errors.server_error(request)
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    page = errors.server_error(RequestFactory().get("/agents/"))
    assert page.status_code == 500
    assert "application/json" not in page["Content-Type"]


def test_html_is_never_the_api_answer_even_if_asked(db):
    response = APIClient().get("/api/v1/marketplace/agents/", HTTP_ACCEPT="text/html")
    assert response.status_code in (200, 406)
    assert response["Content-Type"].startswith("application/json")


# --- Throttling ---------------------------------------------------------------------------------


@pytest.fixture
def tight_rates(monkeypatch):
    # DRF binds the rates at import: patch the class attribute, not the settings.
    monkeypatch.setattr(
        SimpleRateThrottle, "THROTTLE_RATES", {"anon": "5/min", "user": "5/min", "search": "2/min"}
    )


def test_search_has_a_tighter_scope_answering_429_with_retry_after(db, tight_rates):
    client = APIClient()
    assert client.get("/api/v1/agents/search/", {"q": "a"}).status_code == 200
    assert client.post("/api/v1/agents/search/", {"q": "a"}, format="json").status_code == 200
    # Another query: a cached answer (the same GET again) skips throttling (marketplace.caching).
    response = client.get("/api/v1/agents/search/", {"q": "b"})
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert "detail" in response.json()
    # Other endpoints still answer: the search scope is its own.
    assert client.get("/api/v1/marketplace/agents/").status_code == 200


def test_anonymous_and_user_rates_apply_per_client(db, tight_rates):
    anonymous = APIClient()
    url = "/api/v1/marketplace/categories/"
    # Distinct pages: a cached answer skips throttling (marketplace.caching); misses count.
    for size in range(1, 6):
        assert anonymous.get(url, {"page_size": size}).status_code == 200
    assert anonymous.get(url, {"page_size": 6}).status_code == 429
    assert signed_in(UserFactory()).get("/api/v1/marketplace/categories/").status_code == 200


# --- Token auth ---------------------------------------------------------------------------------


def test_token_endpoint_returns_a_token_that_authenticates(db):
    user = UserFactory(username="tess")
    client = APIClient()
    response = client.post(
        "/api/v1/auth/token/",
        {"username": "tess", "password": "correct horse battery staple"},
        format="json",
    )
    assert response.status_code == 200
    token = response.json()["token"]
    assert token == Token.objects.get(user=user).key
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/me/installations/").status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"username": "tess", "password": "wrong"},
        {"username": "nobody", "password": "x"},
        {"username": "tess"},
        {"username": 1, "password": 2},
    ],
)
def test_token_endpoint_rejects_bad_credentials_with_400(db, body):
    UserFactory(username="tess")
    response = APIClient().post("/api/v1/auth/token/", body, format="json")
    assert response.status_code == 400
    assert "token" not in response.json()


def test_a_bad_token_is_401(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert client.get("/api/v1/marketplace/agents/").status_code == 401


# --- A generated client -------------------------------------------------------------------------

GENERATOR = shutil.which("openapi-python-client") or str(
    Path(sys.executable).with_name("openapi-python-client")
)


@pytest.mark.slow
@pytest.mark.skipif(
    not Path(GENERATOR).exists(),
    reason="openapi-python-client is not installed (pip install -r requirements-dev.txt)",
)
def test_a_client_generated_from_the_schema_lists_searches_installs_and_reviews(
    live_server, tmp_path
):
    writing = CategoryFactory(slug="writing")
    pro = AgentFactory(name="Translator Pro", category=writing, rating_average=4.0)
    AgentFactory(name="Code Linter", tagline="Lints code")
    user = UserFactory(username="gen")
    config = tmp_path / "config.yaml"
    config.write_text("post_hooks: []\npackage_name_override: aios_generated_client\n")
    subprocess.run(
        [
            GENERATOR,
            "generate",
            "--url",
            f"{live_server.url}/api/schema/",
            "--meta",
            "none",
            "--output-path",
            str(tmp_path / "aios_generated_client"),
            "--config",
            str(config),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    sys.path.insert(0, str(tmp_path))
    try:
        gen = importlib.import_module("aios_generated_client")
        from aios_generated_client.api.agents import agent_detail, agents_search
        from aios_generated_client.api.auth import auth_token
        from aios_generated_client.api.installations import agent_install, my_installations
        from aios_generated_client.api.marketplace import agents_list
        from aios_generated_client.api.reviews import agent_review_create, my_review_get
        from aios_generated_client.models import CredentialsRequest, ReviewWriteRequest

        anonymous = gen.Client(base_url=live_server.url, raise_on_unexpected_status=True)
        token = auth_token.sync(
            client=anonymous,
            body=CredentialsRequest(username="gen", password="correct horse battery staple"),
        ).token
        client = gen.AuthenticatedClient(
            base_url=live_server.url, token=token, prefix="Token", raise_on_unexpected_status=True
        )

        listed = agents_list.sync(client=anonymous, category="writing")
        assert [card.id for card in listed.results] == [pro.pk]

        found = agents_search.sync(client=anonymous, q="translator")
        assert found.results[0].name == "Translator Pro"
        assert found.facets[0].slug == "writing"

        installed = agent_install.sync_detailed(id=pro.pk, client=client)
        assert installed.status_code == 201
        assert agent_install.sync_detailed(id=pro.pk, client=client).status_code == 200
        mine = my_installations.sync(client=client)
        assert [i.agent.id for i in mine.results] == [pro.pk]

        review = agent_review_create.sync(
            id=pro.pk, client=client, body=ReviewWriteRequest(rating=5, title="Great")
        )
        assert review.rating == 5
        assert my_review_get.sync(id=pro.pk, client=client).title == "Great"
        again = agent_review_create.sync_detailed(
            id=pro.pk, client=client, body=ReviewWriteRequest(rating=1)
        )
        assert again.status_code == 409

        detail = agent_detail.sync(id=pro.pk, client=client)
        assert detail.is_installed is True
        assert detail.my_review.rating == 5
        distribution = detail.rating_distribution
        assert (distribution.field_1, distribution.field_5) == (0, 1)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.startswith("aios_generated_client")]:
            del sys.modules[name]
    user.refresh_from_db()
    assert user.installations.count() == 1
