"""The site in a real browser: what visitors, users and staff do, at desktop and phone sizes."""

import re

import pytest
from playwright.sync_api import expect

from knowledge.models import KnowledgeEntry
from marketplace import icons, services
from marketplace.models import Agent, Review
from tests.factories import AgentFactory, CategoryFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"  # tests.factories.UserFactory's


def _catalogue():
    coding = CategoryFactory(name="Coding", slug="coding")
    writing = CategoryFactory(name="Writing", slug="writing")
    for n in range(30):
        AgentFactory(
            name=f"Code Helper {n:02d}",
            category=coding,
            rating_average=3 + (n % 3) * 0.5,
            install_count=n,
            tagline="Reviews your pull requests",
        )
    AgentFactory(
        name="Translator Pro",
        category=writing,
        rating_average=4.8,
        tagline="Translates documents between languages",
        description="## What it does\n\nTranslates **PDF** files.",
        tags=["pdf", "translation"],
    )
    icons.generate_demo_icons(limit=10)


def _log_in(page, base, username):
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_visitor_browses_filters_searches_and_opens_an_agent(
    live_server, page, media_root, screenshot
):
    _catalogue()
    base = live_server.url

    page.goto(base + "/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Agents for everything")
    screenshot("home-desktop")

    page.get_by_role("link", name=re.compile(r"^Coding")).first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Coding agents")
    page.get_by_label("Sort by").select_option("-installs")
    page.get_by_label("Rating").select_option("4")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"sort=-installs"))
    cards = page.locator(".card-title")
    expect(cards.first).to_have_text("Code Helper 29")  # rating 4.0, most installs
    screenshot("browse-desktop")

    page.get_by_label("Rating").select_option("")
    page.get_by_role("button", name="Apply").click()
    page.get_by_role("link", name="Next →").click()
    expect(page).to_have_url(re.compile(r"cursor="))
    shared = page.url
    first_on_page_two = cards.first.inner_text()
    page.goto(shared)  # a shared Next link shows the same page
    expect(cards.first).to_have_text(first_on_page_two)

    page.get_by_role("searchbox", name="Search agents").fill("translator")
    page.get_by_role("searchbox", name="Search agents").press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Results for “translator”")
    expect(page.get_by_label("Search for")).to_have_value("translator")
    screenshot("search-desktop")

    page.get_by_role("link", name="Translator Pro").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Translator Pro")
    expect(page.locator(".prose h2")).to_have_text("What it does")
    expect(page.get_by_role("link", name="Log in to install")).to_be_visible()
    screenshot("agent-desktop")


def test_user_signs_up_installs_reviews_and_manages_knowledge(
    live_server, page, media_root, screenshot
):
    agent = AgentFactory(name="Translator Pro", slug="translator-pro")
    base = live_server.url
    page.on("dialog", lambda dialog: dialog.accept())  # "Delete your review?"

    page.goto(f"{base}/accounts/signup/")
    page.get_by_label("Username").fill("carol")
    page.get_by_label("Password", exact=True).fill("a-long pass phrase")
    page.get_by_label("Password confirmation").fill("a-long pass phrase")
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_text("Welcome, carol!")).to_be_visible()

    page.goto(f"{base}/agents/translator-pro/")
    page.get_by_role("button", name="Install").click()
    expect(page.get_by_role("button", name="Uninstall")).to_be_visible()
    expect(page.locator("[data-install-count]")).to_have_text("1")
    expect(page.locator("#live-status")).to_have_text("Translator Pro is installed.")
    page.get_by_role("button", name="Uninstall").click()
    expect(page.locator("[data-install-count]")).to_have_text("0")
    expect(page.locator(".installed-note")).to_be_hidden()
    page.get_by_role("button", name="Install").click()
    expect(page.get_by_role("button", name="Uninstall")).to_be_focused()
    agent.refresh_from_db()
    assert agent.install_count == 1

    page.get_by_text("4 stars").click()
    page.get_by_label("Title").fill("Handy")
    page.get_by_role("textbox", name=re.compile(r"^Review")).fill("Saved me an afternoon.")
    page.get_by_role("button", name="Publish review").click()
    expect(page.get_by_text("Thanks, your review is published.")).to_be_visible()
    expect(page.locator(".review-title", has_text="Handy")).to_be_visible()
    screenshot("agent-with-review")

    page.get_by_role("link", name="My agents").click()
    expect(page.get_by_role("link", name="Translator Pro")).to_be_visible()
    screenshot("my-agents")

    page.goto(f"{base}/agents/translator-pro/")
    page.get_by_text("2 stars").click()
    page.get_by_label("Title").fill("Handy, but slow")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_text("Your review is updated.")).to_be_visible()
    assert Review.objects.get().rating == 2
    page.get_by_role("button", name="Delete my review").click()
    expect(page.get_by_text("Your review is deleted.")).to_be_visible()
    assert not Review.objects.exists()
    agent.refresh_from_db()
    assert (agent.rating_count, agent.install_count) == (0, 1)

    page.get_by_role("link", name="Knowledge").click()
    page.get_by_role("link", name="New entry").click()
    page.get_by_label("Title").fill("Glossary")
    page.get_by_label("Type").select_option("document")
    page.get_by_label("Body").fill("## Terms\n\nAgent: a helper.")
    page.get_by_label("For agent").select_option(label="Translator Pro")
    page.get_by_role("button", name="Save entry").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Glossary")
    page.get_by_role("link", name="Edit").click()
    page.get_by_label("Title").fill("Glossary v2")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Glossary v2")
    page.get_by_role("link", name="My knowledge base").click()
    page.get_by_label("Type").select_option("document")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("link", name="Glossary v2")).to_be_visible()
    screenshot("knowledge")
    page.get_by_role("link", name="Glossary v2").click()
    page.get_by_role("link", name="Delete").click()
    page.get_by_role("button", name="Delete entry").click()
    expect(page.get_by_text("Your knowledge base is empty")).to_be_visible()
    assert not KnowledgeEntry.objects.exists()


def test_staff_features_an_agent_and_it_appears_on_the_home_page(live_server, page, media_root):
    UserFactory(username="boss", is_staff=True, is_superuser=True)
    AgentFactory(name="Quiet Gem")
    base = live_server.url

    page.goto(base + "/")
    expect(page.get_by_role("heading", name="Featured")).to_have_count(0)

    page.goto(f"{base}/admin/login/?next=/admin/marketplace/agent/")
    page.get_by_label("Username").fill("boss")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("row", name=re.compile("Quiet Gem")).get_by_role("checkbox").check()
    page.locator("select[name=action]").select_option("feature")
    page.get_by_role("button", name="Go").click()
    expect(page.get_by_text("1 agent(s) featured.")).to_be_visible()
    assert Agent.objects.get().is_featured

    page.goto(base + "/")
    featured = page.locator("section", has=page.get_by_role("heading", name="Featured"))
    expect(featured.get_by_role("link", name="Quiet Gem")).to_be_visible()


@pytest.mark.parametrize("width", [360, 1280])
def test_main_pages_fit_the_screen_without_horizontal_scroll(
    live_server, page, media_root, screenshot, width
):
    _catalogue()
    user = UserFactory(username="dora")
    translator = Agent.objects.get(name="Translator Pro")
    services.install_agent(user=user, agent=translator)
    services.create_review(user=user, agent=translator, rating=5, title="A" * 120, body="B" * 900)
    base = live_server.url
    page.set_viewport_size({"width": width, "height": 800})
    _log_in(page, base, "dora")

    pages = {
        "home": "/",
        "browse": "/agents/?category=coding",
        "agent": "/agents/" + translator.slug + "/",
        "search": "/search/?q=helper",
        "stats": "/stats/",
        "my-agents": "/me/agents/",
        "knowledge": "/knowledge/",
        "not-found": "/no-such-page/",
    }
    errors = []  # CSP violations, failed loads, script errors
    page.on("console", lambda m: errors.append((page.url, m.text)) if m.type == "error" else None)
    for name, path in pages.items():
        page.goto(base + path)
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= width, f"{path} scrolls sideways at {width}px ({scroll_width}px)"
        screenshot(f"{name}-{width}")
        if name == "not-found":  # its own 404 status is reported as a console error
            errors = [e for e in errors if "/no-such-page/" not in e[0]]
    assert errors == []


def test_stored_scripts_and_javascript_links_never_run(live_server, page, media_root):
    agent = AgentFactory(
        name="Sneaky",
        description=(
            "<script>window.pwned = 1</script>\n\n"
            "[click me](javascript:window.pwned=2)\n\n"
            '<img src="x" onerror="window.pwned=3">\n\n'
            '<a href="javascript:window.pwned=4">raw link</a>'
        ),
    )
    services.create_review(
        user=UserFactory(),
        agent=agent,
        rating=1,
        title="<script>window.pwned=5</script>",
        body='<img src="x" onerror="window.pwned=6">',
    )
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    page.goto(f"{live_server.url}/agents/{agent.slug}/")
    for link in page.locator(".prose a").all():
        link.click()
    assert page.evaluate("window.pwned") is None
    assert page.locator('a[href^="javascript:"]').count() == 0
    assert page.locator("[onerror], [onclick]").count() == 0
    expect(page.locator(".review-title")).to_have_text("<script>window.pwned=5</script>")
    assert dialogs == []
