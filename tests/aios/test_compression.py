"""Compression of dynamic responses (aios/compression.py) and of cached copies.

The ratios are asserted on a fixed 20-agent listing, built below the way the API renders
a page of cards (compact JSON, DRF's default), never on timings.
"""

import gzip
import json
import random

import brotli
import pytest
from django.conf import settings as django_settings
from django.http import HttpResponse, StreamingHttpResponse
from django.middleware.csrf import get_token
from django.test import Client
from django.urls import path

from aios import compression
from aios.response_cache import CachePolicy
from marketplace import caching
from tests.factories import UserFactory

pytestmark = [pytest.mark.urls(__name__)]


def listing_fixture() -> bytes:
    """A page of 20 agent cards as `GET /api/v1/marketplace/agents/` returns it; fixed."""
    rng = random.Random(20)
    categories = [
        ("writing", "Writing"),
        ("coding", "Coding"),
        ("data-analysis", "Data analysis"),
        ("research", "Research"),
        ("productivity", "Productivity"),
        ("customer-support", "Customer support"),
    ]
    publishers = [
        ("northwind-labs", "Northwind Labs", True),
        ("acme-ai", "Acme AI", True),
        ("bluefin", "Bluefin Software", False),
        ("orbital", "Orbital Systems", True),
        ("quill-co", "Quill & Co", False),
    ]
    adjectives = ["Smart", "Swift", "Deep", "Clear", "Bright", "Quick", "Pro", "Auto", "Open"]
    nouns = ["Translator", "Summarizer", "Coder", "Analyst", "Researcher", "Planner", "Writer"]
    verbs = ["Translates", "Summarizes", "Reviews", "Drafts", "Analyses", "Organizes", "Checks"]
    objects = [
        "documents between languages",
        "pull requests and code changes",
        "meeting notes into action items",
        "spreadsheets and CSV files",
        "research papers and their citations",
        "support tickets by urgency",
        "emails in your own tone",
        "SQL queries against your warehouse",
    ]
    results = []
    for i in range(20):
        category_slug, category_name = rng.choice(categories)
        publisher_slug, publisher_name, verified = rng.choice(publishers)
        name = f"{rng.choice(adjectives)} {rng.choice(nouns)} {i + 1}"
        agent_id = 1000 + i * 7
        reviews = rng.randint(0, 900)
        results.append(
            {
                "id": agent_id,
                "slug": name.lower().replace(" ", "-"),
                "name": name,
                "tagline": f"{rng.choice(verbs)} {rng.choice(objects)}",
                "icon": None,
                "category": {"slug": category_slug, "name": category_name},
                "publisher": {"slug": publisher_slug, "name": publisher_name, "verified": verified},
                "rating_average": round(rng.uniform(3, 5), 2),
                "rating_count": reviews,
                "install_count": rng.randint(reviews, 50_000),
                "is_featured": rng.random() < 0.2,
                "created_at": f"2026-{rng.randint(1, 10):02d}-{rng.randint(1, 28):02d}T"
                f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z",
                "url": f"http://testserver/api/v1/agents/{agent_id}/",
            }
        )
    page = {
        "next": "http://testserver/api/v1/marketplace/agents/?cursor=cD0zLjk4JmlkPTEwNzk%3D",
        "previous": None,
        "results": results,
    }
    return json.dumps(page, separators=(",", ":"), ensure_ascii=False).encode()


LISTING = listing_fixture()


def listing(request):
    return HttpResponse(LISTING, content_type="application/json")


@CachePolicy("lists", ttl=caching.LISTS_TTL)
def cached_listing(request):
    return HttpResponse(LISTING, content_type="application/json")


def sized(request, n):
    return HttpResponse(b"x" * n, content_type="text/plain")


def page_with_csrf(request):
    return HttpResponse(f"<form><input value='{get_token(request)}'></form>" + "<p>x</p>" * 300)


def page(request):
    return HttpResponse("<p>Agents</p>" * 300)


def png(request):
    return HttpResponse(b"\x89PNG" + b"\0" * 4000, content_type="image/png")


def streamed(request):
    return StreamingHttpResponse([b"x" * 4000], content_type="text/plain")


def precompressed(request):
    response = HttpResponse(gzip.compress(b"y" * 4000), content_type="text/plain")
    response["Content-Encoding"] = "gzip"
    return response


urlpatterns = [
    path("listing/", listing),
    path("cached-listing/", cached_listing),
    path("sized/<int:n>/", sized),
    path("csrf/", page_with_csrf),
    path("page/", page),
    path("png/", png),
    path("streamed/", streamed),
    path("precompressed/", precompressed),
]


def decode(response) -> bytes:
    coding = response.get("Content-Encoding")
    if coding == "br":
        return brotli.decompress(response.content)
    if coding == "gzip":
        return gzip.decompress(response.content)
    return response.content


def saving(response) -> float:
    return 1 - len(response.content) / len(LISTING)


# --- The report's ratios ---------------------------------------------------------------------


def test_fixture_is_a_realistic_twenty_card_page():
    page = json.loads(LISTING)
    assert len(page["results"]) == 20
    assert len({card["tagline"] for card in page["results"]}) > 5
    assert 6_000 < len(LISTING) < 12_000


@pytest.mark.parametrize(
    ("accept", "coding", "least_saving"),
    [("gzip, deflate, br", "br", 0.74), ("gzip", "gzip", 0.68)],
    ids=["brotli-74", "gzip-68"],
)
@pytest.mark.parametrize("url", ["/listing/", "/cached-listing/"], ids=["dynamic", "cached"])
def test_twenty_agent_listing_shrinks_as_the_report_says(
    client, url, accept, coding, least_saving, db
):
    """The report's -74 % with brotli and -68 % with gzip, dynamic and from the cache."""
    response = client.get(url, HTTP_ACCEPT_ENCODING=accept)
    assert response["Content-Encoding"] == coding
    assert decode(response) == LISTING
    assert saving(response) >= least_saving


def test_no_accept_encoding_gets_the_identity(client, db):
    for url in ("/listing/", "/cached-listing/", "/cached-listing/"):
        response = client.get(url)
        assert "Content-Encoding" not in response
        assert response.content == LISTING
        assert "Accept-Encoding" in response["Vary"]


# --- What is and is not compressed -----------------------------------------------------------


def test_only_bodies_of_1_kb_or_more_are_compressed(client):
    small = client.get(f"/sized/{compression.MIN_SIZE - 1}/", HTTP_ACCEPT_ENCODING="br")
    large = client.get(f"/sized/{compression.MIN_SIZE}/", HTTP_ACCEPT_ENCODING="br")
    assert "Content-Encoding" not in small
    assert len(small.content) == compression.MIN_SIZE - 1
    assert large["Content-Encoding"] == "br"
    assert decode(large) == b"x" * compression.MIN_SIZE


@pytest.mark.parametrize("url", ["/png/", "/streamed/"])
def test_binary_and_streaming_responses_are_left_alone(client, url):
    response = client.get(url, HTTP_ACCEPT_ENCODING="br, gzip")
    assert "Content-Encoding" not in response


def test_an_encoded_response_is_not_compressed_twice(client):
    response = client.get("/precompressed/", HTTP_ACCEPT_ENCODING="br, gzip")
    assert response["Content-Encoding"] == "gzip"
    assert gzip.decompress(response.content) == b"y" * 4000


def test_whitenoise_static_files_are_never_compressed_again(settings, tmp_path):
    css = b"body { color: #123456; margin: 0 auto; }\n" * 200
    (tmp_path / "plain.css").write_bytes(css)
    (tmp_path / "packed.css").write_bytes(css)
    (tmp_path / "packed.css.br").write_bytes(brotli.compress(css))
    settings.STATIC_ROOT = tmp_path
    client = Client()  # a new handler: whitenoise scans STATIC_ROOT when it starts
    plain = client.get("/static/plain.css", HTTP_ACCEPT_ENCODING="br, gzip")
    packed = client.get("/static/packed.css", HTTP_ACCEPT_ENCODING="br, gzip")
    assert plain.status_code == packed.status_code == 200
    assert "Content-Encoding" not in plain  # whitenoise had no .br; nothing below it ran
    assert b"".join(plain.streaming_content) == css
    assert packed["Content-Encoding"] == "br"
    assert b"".join(packed.streaming_content) == (tmp_path / "packed.css.br").read_bytes()


def test_compression_sits_right_below_whitenoise():
    middleware = django_settings.MIDDLEWARE
    position = middleware.index("aios.compression.CompressionMiddleware")
    assert middleware[position - 1] == "whitenoise.middleware.WhiteNoiseMiddleware"
    assert position < middleware.index("django.contrib.sessions.middleware.SessionMiddleware")


# --- BREACH --------------------------------------------------------------------------------------


def _gzip_has_filename(data: bytes) -> bool:
    return bool(data[3] & 0x08)  # FLG.FNAME: where Django puts its random-length padding


def test_a_page_with_a_csrf_token_gets_padded_gzip_never_brotli(client):
    lengths = set()
    for _ in range(12):
        response = client.get("/csrf/", HTTP_ACCEPT_ENCODING="br, gzip")
        assert response["Content-Encoding"] == "gzip"
        assert _gzip_has_filename(response.content)
        lengths.add(len(response.content))
    assert len(lengths) > 1


def test_a_signed_in_browser_gets_padded_gzip(client, db):
    client.force_login(UserFactory())
    response = client.get("/page/", HTTP_ACCEPT_ENCODING="br, gzip")
    assert response["Content-Encoding"] == "gzip"
    assert _gzip_has_filename(response.content)
    assert gzip.decompress(response.content) == b"<p>Agents</p>" * 300


def test_anonymous_pages_get_brotli_without_padding(client):
    response = client.get("/page/", HTTP_ACCEPT_ENCODING="br, gzip")
    assert response["Content-Encoding"] == "br"
    assert not _gzip_has_filename(client.get("/page/", HTTP_ACCEPT_ENCODING="gzip").content)


# --- Validators of compressed copies ---------------------------------------------------------


def test_each_coding_has_its_own_strong_etag_and_all_revalidate(client, db):
    identity = client.get("/cached-listing/")["ETag"]
    packed = client.get("/cached-listing/", HTTP_ACCEPT_ENCODING="br")["ETag"]
    assert packed == f'{identity[:-1]}-br"'
    for tag in (identity, packed, f"W/{packed}"):
        response = client.get("/cached-listing/", HTTP_ACCEPT_ENCODING="br", HTTP_IF_NONE_MATCH=tag)
        assert response.status_code == 304


def test_dynamic_compression_marks_a_strong_etag_with_its_coding(client):
    response = HttpResponse(b"z" * 5000, content_type="text/plain")
    response["ETag"] = '"abc"'
    middleware = compression.CompressionMiddleware(lambda request: response)
    request = client.get("/page/").wsgi_request
    request.META["HTTP_ACCEPT_ENCODING"] = "gzip"
    assert middleware(request)["ETag"] == '"abc-gzip"'


@pytest.mark.parametrize(
    ("header", "coding"),
    [
        ("gzip, deflate, br", "br"),
        ("gzip;q=1.0, br;q=0.5", "gzip"),
        ("br;q=0, gzip", "gzip"),
        ("gzip;q=0, br", "br"),
        ("*", "br"),
        ("identity", None),
        ("", None),
        ("br;q=abc, gzip", "gzip"),
    ],
)
def test_accept_encoding_is_read_with_its_q_values(header, coding):
    assert compression.choose_coding(header) == coding
