"""In a real browser, stored and reflected script never runs, and the pages break none of the
Content-Security-Policy's rules (a violation would mean a page relies on inline code)."""

from pathlib import Path
from urllib.parse import quote

import pytest
from django.test import Client

from marketplace import services
from tests.factories import (
    AgentFactory,
    CategoryFactory,
    KnowledgeEntryFactory,
    PublisherFactory,
    UserFactory,
)
from tests.helpers.browser import CHROMIUM
from tests.helpers.browser import browser_type_launch_args as browser_type_launch_args

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}"),
]

# Each payload calls pwned(n) if it ever runs; n says which one did.
PAYLOADS = [
    "<script>pwned(1)</script>",
    '<img src=x onerror="pwned(2)">',
    "<svg onload=pwned(3)></svg>",
    '"><script>pwned(4)</script>',
    "</title><script>pwned(5)</script>",
    "';pwned(6);'",
    '<a href="javascript:pwned(7)">click</a>',
    "[click me](javascript:pwned(8))",  # Markdown link
    '<iframe src="javascript:pwned(9)"></iframe>',
    "<details open ontoggle=pwned(10)>",
    "\u202e<script>pwned(11)</script>",
]
EVIL = " ".join(PAYLOADS)
EVIL_URL = "javascript:pwned(12)"


@pytest.fixture
def evil(db):
    """Hostile text in every free-text field, stored as if it had got past any form."""
    category = CategoryFactory(name=f"Cat {PAYLOADS[0]}", slug="evil-category")
    publisher = PublisherFactory(name=f"Pub {PAYLOADS[1]}", slug="evil-pub", website=EVIL_URL)
    agent = AgentFactory(
        name=f"Evil {PAYLOADS[2]}",
        slug="evil-agent",
        tagline=EVIL[:200],
        description=EVIL,
        homepage_url=EVIL_URL,
        source_url=EVIL_URL,
        tags=PAYLOADS[:4],
        category=category,
        publisher=publisher,
        is_featured=True,
    )
    author = UserFactory(username="mallory")
    services.install_agent(user=author, agent=agent)
    services.create_review(user=author, agent=agent, rating=5, title=EVIL[:120], body=EVIL)
    owner = UserFactory(username="victim")
    services.install_agent(user=owner, agent=agent)
    entry = KnowledgeEntryFactory(
        user=owner, title=EVIL[:200], body=EVIL, source_url=EVIL_URL, tags=PAYLOADS[:3]
    )
    return {"agent": agent, "owner": owner, "entry": entry}


def _sign_in(context, live_server, user):
    client = Client()
    client.force_login(user)
    cookie = client.cookies["sessionid"]
    context.add_cookies([{"name": "sessionid", "value": cookie.value, "url": live_server.url}])


def _watch(page):
    """Record calls of pwned() and every CSP violation the page reports."""
    seen = {"pwned": [], "csp": []}
    page.expose_function("pwned", lambda n: seen["pwned"].append(n))
    page.on(
        "console",
        lambda msg: (
            seen["csp"].append(f"{page.url}: {msg.text[:160]}")
            if "Content Security Policy" in msg.text
            else None
        ),
    )
    return seen


def _assert_inert(page, url):
    """Nothing in the DOM can run script: no inline script, handler or javascript: URL."""
    found = page.evaluate(
        """() => {
            const bad = [];
            for (const el of document.querySelectorAll('*')) {
                for (const attr of el.attributes) {
                    const name = attr.name.toLowerCase(), value = attr.value.trim().toLowerCase();
                    if (name.startsWith('on')) bad.push(el.tagName + ' ' + name);
                    if (['href', 'src', 'action', 'formaction'].includes(name)
                        && value.startsWith('javascript:')) bad.push(el.tagName + ' ' + name);
                }
                if (el.tagName === 'SCRIPT' && !el.src && el.type !== 'application/json')
                    bad.push('inline script');
                if (el.tagName === 'IFRAME') bad.push('iframe');
            }
            return bad;
        }"""
    )
    assert found == [], (url, found)


def _visit_all(page, live_server, paths, seen):
    for path in paths:
        response = page.goto(live_server.url + path)
        assert response.status < 500, path
        page.wait_for_load_state("load")
        for link in page.locator("main a").all()[:40]:  # a click must not run anything either
            href = (link.get_attribute("href") or "").strip().lower()
            assert not href.startswith("javascript:"), (path, href)
        _assert_inert(page, path)
    assert seen["pwned"] == [], seen["pwned"]


def test_stored_script_in_every_free_text_never_runs(page, context, live_server, evil):
    seen = _watch(page)
    agent, entry = evil["agent"], evil["entry"]
    public = [
        "/",
        "/agents/",
        "/agents/?category=evil-category",
        f"/agents/{agent.slug}/",
        f"/agents/{agent.slug}/reviews/",
        "/search/?q=" + quote(EVIL),
        "/search/?q=evil",
        "/stats/",
    ]
    _visit_all(page, live_server, public, seen)
    _sign_in(context, live_server, evil["owner"])
    private = [
        "/me/agents/",
        "/knowledge/",
        f"/knowledge/{entry.pk}/",
        f"/knowledge/{entry.pk}/edit/",
    ]
    _visit_all(page, live_server, private + public[:4], seen)
    assert seen["csp"] == [], seen["csp"]  # escaped, so the policy had nothing to block


def test_reflected_script_in_search_and_errors_never_runs(page, live_server, evil):
    seen = _watch(page)
    paths = [
        "/search/?q=" + quote(PAYLOADS[3]),
        "/search/?q=" + quote(PAYLOADS[1]) + "&sort=" + quote(PAYLOADS[0]),
        "/agents/?sort=" + quote(PAYLOADS[4]) + "&cursor=" + quote(PAYLOADS[2]),
        "/agents/" + quote(PAYLOADS[0], safe="") + "/",
        "/accounts/login/?next=" + quote(EVIL_URL),
    ]
    _visit_all(page, live_server, paths, seen)
    assert seen["csp"] == [], seen["csp"]


def test_the_pages_and_the_api_docs_satisfy_the_content_security_policy(
    page, context, live_server, evil
):
    seen = _watch(page)
    staff = UserFactory(username="boss", is_staff=True, is_superuser=True)
    _sign_in(context, live_server, staff)
    for path in ("/", f"/agents/{evil['agent'].slug}/", "/admin/", "/admin/marketplace/agent/"):
        assert page.goto(live_server.url + path).status == 200, path
        page.wait_for_load_state("load")
    page.goto(live_server.url + "/api/docs/")
    page.wait_for_selector(".swagger-ui .opblock", timeout=15_000)  # Swagger UI booted
    assert seen["csp"] == [], seen["csp"]
