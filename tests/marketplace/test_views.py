import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from marketplace import icons, search, services, views
from marketplace.forms import SORT_CHOICES
from marketplace.managers import AGENT_ORDERINGS
from marketplace.models import Agent, Installation, Review
from tests.factories import AgentFactory, CategoryFactory, UserFactory

pytestmark = pytest.mark.django_db


def _names(response) -> list[str]:
    """Agent names in card order, as the page shows them."""
    html = response.content.decode()
    return re.findall(r'<h3 class="card-title"><a href="[^"]+">([^<]+)</a>', html)


def _next_link(response) -> str | None:
    match = re.search(r'rel="next" href="([^"]+)"', response.content.decode())
    return match.group(1).replace("&amp;", "&") if match else None


def _prev_link(response) -> str | None:
    match = re.search(r'rel="prev" href="([^"]+)"', response.content.decode())
    return match.group(1).replace("&amp;", "&") if match else None


# --- Home -------------------------------------------------------------------------------------


def test_home_shows_featured_shelves_and_categories_with_counts(client):
    writing = CategoryFactory(name="Writing")
    AgentFactory(name="Star Writer", category=writing, is_featured=True, rating_average=4.9)
    AgentFactory(name="Plain Writer", category=writing)
    AgentFactory(name="Hidden Writer", category=writing, is_active=False, is_featured=True)

    response = client.get(reverse("home"))

    assert response.status_code == 200
    html = response.content.decode()
    featured = html.split('id="shelf-1"')[1].split("</section>")[0]
    assert "Featured" in featured and "Star Writer" in featured
    assert "Plain Writer" not in featured
    assert "Hidden Writer" not in html
    assert re.search(r"Writing <span class=\"chip-count\">2</span>", html)


def test_home_query_count_does_not_grow_with_rows(
    client, django_assert_num_queries, django_capture_on_commit_callbacks
):
    AgentFactory.create_batch(3, is_featured=True)
    with django_assert_num_queries(5):  # four shelves + category counts
        client.get(reverse("home"))
    with django_capture_on_commit_callbacks(execute=True):  # retires the cached page
        AgentFactory.create_batch(20, is_featured=True)
    with django_assert_num_queries(5):
        client.get(reverse("home"))


def test_home_without_agents_explains_how_to_get_some(client):
    response = client.get(reverse("home"))
    assert response.status_code == 200
    assert "No agents yet" in response.content.decode()


# --- Browse -----------------------------------------------------------------------------------


def test_browse_filters_by_category_and_minimum_rating(client):
    coding, writing = CategoryFactory(name="Coding"), CategoryFactory(name="Writing")
    AgentFactory(name="Good Coder", category=coding, rating_average=4.5)
    AgentFactory(name="Weak Coder", category=coding, rating_average=2.0)
    AgentFactory(name="Good Writer", category=writing, rating_average=4.8)

    response = client.get(reverse("agent-list"), {"category": "coding", "min_rating": "4"})

    assert response.status_code == 200
    assert _names(response) == ["Good Coder"]
    assert "<h1>Coding agents</h1>" in response.content.decode()


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("-rating", ["B", "C", "A"]),
        ("-installs", ["C", "A", "B"]),
        ("-created", ["A", "B", "C"]),
        ("name", ["A", "B", "C"]),
    ],
)
def test_browse_sorts(client, sort, expected):
    now = timezone.now()
    AgentFactory(name="A", rating_average=1.0, install_count=5, created_at=now)
    AgentFactory(name="B", rating_average=5.0, install_count=1, created_at=now - timedelta(days=1))
    AgentFactory(name="C", rating_average=3.0, install_count=9, created_at=now - timedelta(days=2))

    assert _names(client.get(reverse("agent-list"), {"sort": sort})) == expected


def test_the_sort_menu_offers_every_ordering_the_api_has():
    assert {key for key, _ in SORT_CHOICES} == set(AGENT_ORDERINGS)


def test_browse_pages_with_shareable_next_and_previous_links(client):
    AgentFactory.create_batch(30, rating_average=4.0)  # ties everywhere: the id breaks them
    first = client.get(reverse("agent-list"), {"sort": "-rating"})
    assert len(_names(first)) == 24
    assert _prev_link(first) is None

    next_url = _next_link(first)
    assert "sort=-rating" in next_url and "cursor=" in next_url
    second = client.get(reverse("agent-list") + next_url)  # the same link works in any session
    assert len(_names(second)) == 6
    assert not set(_names(first)) & set(_names(second))
    assert _next_link(second) is None

    back = client.get(reverse("agent-list") + _prev_link(second))
    assert _names(back) == _names(first)


def test_browse_with_a_broken_cursor_answers_400_with_the_first_page(client):
    AgentFactory(name="Only One")
    response = client.get(reverse("agent-list"), {"cursor": "garbage"})
    assert response.status_code == 400
    assert _names(response) == ["Only One"]
    assert "no longer valid" in response.content.decode()


def test_browse_answers_unknown_sort_and_rating_values_with_a_400_and_leaves_them_out(client):
    AgentFactory(name="Still Listed")
    response = client.get(reverse("agent-list"), {"sort": "DROP TABLE", "min_rating": "9"})
    assert response.status_code == 400  # one rule for every filter (marketplace.filters)
    assert _names(response) == ["Still Listed"]
    assert "Sort: Select a valid choice" in response.content.decode()


def test_browse_query_count_does_not_grow_with_rows(
    client, django_assert_num_queries, django_capture_on_commit_callbacks
):
    AgentFactory.create_batch(5)
    with django_assert_num_queries(2):  # category counts + one key-set page
        client.get(reverse("agent-list"), {"sort": "-installs"})
    with django_capture_on_commit_callbacks(execute=True):  # retires the cached page
        AgentFactory.create_batch(40)
    with django_assert_num_queries(2):
        client.get(reverse("agent-list"), {"sort": "-installs"})


# --- Agent page -------------------------------------------------------------------------------


def test_agent_page_shows_details_histogram_and_recent_reviews(client, agent, other_user):
    agent.tags = ["pdf", "translation"]
    agent.version = "2.3.1"
    agent.save()
    services.create_review(user=other_user, agent=agent, rating=5, title="Superb", body="Yes")

    response = client.get(agent.get_absolute_url())

    html = response.content.decode()
    assert response.status_code == 200
    assert "<h1>Translator Pro</h1>" in html
    assert "v2.3.1" in html and ">pdf</a>" in html
    assert "Superb" in html and "Log in to install" in html
    assert 'class="bar-fill" width="100"' in html  # all ratings are 5 stars


def test_agent_page_renders_markdown_without_scripts_or_javascript_links(client):
    agent = AgentFactory(
        description=(
            "## Features\n\n**Bold** text\n\n<script>alert(1)</script>\n\n"
            '[click](javascript:alert(2)) <img src=x onerror="alert(3)">\n\n'
            '<a href="https://example.com" onclick="alert(4)">safe</a>'
        )
    )
    html = client.get(agent.get_absolute_url()).content.decode()
    prose = html.split('class="prose"')[1].split("</section>")[0]
    assert "<h2>Features</h2>" in prose and "<strong>Bold</strong>" in prose
    assert "<script" not in prose and "javascript:" not in prose
    assert "onerror" not in prose and "onclick" not in prose and "<img" not in prose
    assert 'href="https://example.com"' in prose


def test_server_error_page_renders_without_a_request_context(rf):
    from aios.api.errors import server_error

    response = server_error(rf.get("/agents/"))
    html = response.content.decode()
    assert response.status_code == 500
    assert "Something went wrong on our side" in html and "/static/css/site.css" in html


def test_inactive_or_unknown_agent_is_404(client):
    hidden = AgentFactory(is_active=False)
    assert client.get(hidden.get_absolute_url()).status_code == 404
    response = client.get(reverse("agent-detail", kwargs={"slug": "no-such-agent"}))
    assert response.status_code == 404
    assert "We could not find that page" in response.content.decode()


def test_agent_page_query_count(client, agent, user, django_assert_num_queries):
    for n in range(8):
        services.create_review(user=UserFactory(), agent=agent, rating=1 + n % 5)
    with django_assert_num_queries(2):  # agent + recent reviews
        client.get(agent.get_absolute_url())
    client.force_login(user)
    # + session, user, my review; "installed?" is an EXISTS in the agent's query (for_viewer)
    with django_assert_num_queries(5):
        client.get(agent.get_absolute_url())


def test_agent_reviews_page_is_newest_first_and_paged(client, agent, django_assert_num_queries):
    base = timezone.now()
    for n in range(12):
        review = services.create_review(user=UserFactory(), agent=agent, rating=4, title=f"R{n}")
        Review.objects.filter(pk=review.pk).update(created_at=base - timedelta(hours=n))
    Review.objects.filter(title="R0").update(is_hidden=True)

    with django_assert_num_queries(2):
        first = client.get(reverse("agent-reviews", kwargs={"slug": agent.slug}))
    titles = re.findall(r'class="review-title">(R\d+)<', first.content.decode())
    assert titles == [f"R{n}" for n in range(1, 11)]
    second = client.get(reverse("agent-reviews", kwargs={"slug": agent.slug}) + _next_link(first))
    assert re.findall(r'class="review-title">(R\d+)<', second.content.decode()) == ["R11"]


# --- Installing -------------------------------------------------------------------------------


def test_install_needs_login(client, agent):
    response = client.post(reverse("agent-install", kwargs={"slug": agent.slug}))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert not Installation.objects.exists()


def test_install_and_uninstall_keep_the_counter_and_redirect_back(client, agent, user):
    client.force_login(user)
    url = reverse("agent-install", kwargs={"slug": agent.slug})

    response = client.post(url, {"next": "/agents/"}, follow=True)

    assert response.redirect_chain[-1][0] == "/agents/"
    assert "Translator Pro is installed." in response.content.decode()
    assert Agent.objects.get(pk=agent.pk).install_count == 1
    client.post(url)  # a second install changes nothing
    assert Agent.objects.get(pk=agent.pk).install_count == 1

    page = client.get(agent.get_absolute_url()).content.decode()
    assert ">Uninstall</button>" in page

    client.post(reverse("agent-uninstall", kwargs={"slug": agent.slug}))
    assert Agent.objects.get(pk=agent.pk).install_count == 0
    assert not Installation.objects.exists()


def test_install_ignores_an_offsite_next(client, agent, user):
    client.force_login(user)
    response = client.post(
        reverse("agent-install", kwargs={"slug": agent.slug}), {"next": "https://evil.example/"}
    )
    assert response["Location"] == agent.get_absolute_url()


def test_install_is_a_form_post_even_when_asked_for_json(client, agent, user):
    # The JSON install is the API's (api:agent-install); site.js follows this redirect.
    client.force_login(user)
    url = reverse("agent-install", kwargs={"slug": agent.slug})
    response = client.post(url, {"next": agent.get_absolute_url()}, HTTP_ACCEPT="application/json")
    assert response.status_code == 302
    assert response["Location"] == agent.get_absolute_url()
    page = client.get(response["Location"]).content.decode()
    assert "Translator Pro is installed." in page
    assert re.search(r"<span data-install-count>1</span> install<", page)
    assert 'action="/agents/translator-pro/uninstall/"' in page


def test_install_of_an_inactive_agent_is_404_and_get_is_405(client, user):
    hidden = AgentFactory(is_active=False)
    client.force_login(user)
    assert client.post(reverse("agent-install", kwargs={"slug": hidden.slug})).status_code == 404
    assert client.get(reverse("agent-install", kwargs={"slug": hidden.slug})).status_code == 405
    assert not Installation.objects.exists()


def test_install_needs_csrf_token(agent, user):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    response = strict.post(reverse("agent-install", kwargs={"slug": agent.slug}))
    assert response.status_code == 403
    assert not Installation.objects.exists()


# --- Reviews ----------------------------------------------------------------------------------


def test_write_edit_and_delete_my_review(client, agent, user):
    client.force_login(user)
    slug = agent.slug

    client.post(reverse("review-create", kwargs={"slug": slug}), {"rating": "4", "title": "Nice"})
    agent.refresh_from_db()
    assert (agent.rating_count, agent.rating_average, agent.ratings_4) == (1, 4.0, 1)
    page = client.get(agent.get_absolute_url()).content.decode()
    assert "Your review" in page and 'value="Nice"' in page

    client.post(
        reverse("review-update", kwargs={"slug": slug}), {"rating": "2", "title": "Meh", "body": ""}
    )
    agent.refresh_from_db()
    assert (agent.rating_count, agent.rating_average, agent.ratings_4, agent.ratings_2) == (
        1,
        2.0,
        0,
        1,
    )
    assert Review.objects.get().title == "Meh"

    client.post(reverse("review-delete", kwargs={"slug": slug}))
    agent.refresh_from_db()
    assert (agent.rating_count, agent.rating_average) == (0, 0.0)
    assert not Review.objects.exists()


def test_invalid_review_comes_back_filled_in_with_the_error_next_to_the_field(client, agent, user):
    client.force_login(user)
    response = client.post(
        reverse("review-create", kwargs={"slug": agent.slug}),
        {"rating": "9", "title": "Kept title", "body": "Kept body"},
    )
    html = response.content.decode()
    assert response.status_code == 400
    assert 'value="Kept title"' in html and "Kept body</textarea>" in html
    rating_block = html.split('class="rating-input')[1].split("</fieldset>")[0]
    assert "field-error" in rating_block
    assert not Review.objects.exists()


def test_a_second_review_is_a_form_error(client, agent, user):
    services.create_review(user=user, agent=agent, rating=5)
    client.force_login(user)
    response = client.post(reverse("review-create", kwargs={"slug": agent.slug}), {"rating": "1"})
    assert response.status_code == 400
    assert "already reviewed" in response.content.decode()
    assert Review.objects.get().rating == 5


def test_editing_someone_elses_review_is_impossible(client, agent, user, other_user):
    services.create_review(user=other_user, agent=agent, rating=5, title="Mine")
    client.force_login(user)
    response = client.post(reverse("review-update", kwargs={"slug": agent.slug}), {"rating": "1"})
    assert response.status_code == 404
    assert client.post(reverse("review-delete", kwargs={"slug": agent.slug})).status_code == 404
    assert Review.objects.get().rating == 5


def test_stored_script_in_a_review_is_escaped(client, agent, other_user):
    services.create_review(
        user=other_user, agent=agent, rating=3, title="<script>alert(1)</script>", body="<b>x</b>"
    )
    html = client.get(agent.get_absolute_url()).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


# --- Search -----------------------------------------------------------------------------------


def test_search_keeps_the_query_and_shows_results_and_facets(client):
    coding = CategoryFactory(name="Coding")
    AgentFactory(name="Translator Pro", tagline="Translates documents")
    AgentFactory(name="Code Translator", category=coding, tagline="Ports code")
    AgentFactory(name="Calendar Bot", tagline="Plans your week")

    response = client.get(reverse("search"), {"q": "translator"})

    html = response.content.decode()
    assert response.status_code == 200
    assert set(_names(response)) == {"Translator Pro", "Code Translator"}
    assert 'value="translator"' in html
    assert "Coding <span" in html  # a facet with its count


def test_search_category_facet_narrows_results(client):
    coding = CategoryFactory(name="Coding")
    AgentFactory(name="Translator Pro")
    AgentFactory(name="Code Translator", category=coding)
    response = client.get(reverse("search"), {"q": "translator", "category": "coding"})
    assert _names(response) == ["Code Translator"]


def test_search_without_matches_has_a_useful_empty_state(client):
    AgentFactory(name="Translator Pro")
    html = client.get(reverse("search"), {"q": "zzzqqq"}).content.decode()
    assert "No agents match “zzzqqq”" in html
    assert "Check the spelling" in html and reverse("agent-list") in html


def test_a_misspelt_search_without_matches_offers_the_corrected_query(client):
    AgentFactory(name="Translator Pro", tagline="Translates documents")
    # Transposed letters: too far for trigram matching, close enough to suggest.
    response = client.get(reverse("search"), {"q": "tarnslaotr"})
    html = response.content.decode()
    assert _names(response) == []
    assert "Did you mean" in html and "<strong>translator</strong>" in html
    followed = client.get(reverse("search"), {"q": "translator"})
    assert _names(followed) == ["Translator Pro"]


def test_no_suggestion_when_every_word_is_known(client):
    AgentFactory(name="Translator Pro", tagline="Translates documents")
    html = client.get(reverse("search"), {"q": "translator", "category": "nowhere"}).content
    assert b"Did you mean" not in html


def test_blank_search_invites_a_query(client):
    AgentFactory(name="Translator Pro")
    html = client.get(reverse("search")).content.decode()
    assert "What should your agent do?" in html
    assert "card-title" not in html


def test_too_long_search_is_a_400_with_a_message(client):
    response = client.get(reverse("search"), {"q": "x" * 201})
    assert response.status_code == 400
    assert "field-error" in response.content.decode()


def test_search_query_count_does_not_grow_with_rows(
    client, django_assert_num_queries, django_capture_on_commit_callbacks
):
    AgentFactory.create_batch(3, tagline="helps with invoices")
    with django_assert_num_queries(2):  # results page + facets
        client.get(reverse("search"), {"q": "invoices"})
    with django_capture_on_commit_callbacks(execute=True):  # retires the cached page
        AgentFactory.create_batch(30, tagline="helps with invoices")
    with django_assert_num_queries(2):
        client.get(reverse("search"), {"q": "invoices"})


def test_search_past_the_facet_cap_shows_at_least_counts_and_the_bound(client, monkeypatch):
    for module in (search, views):  # the view shows the caps search applies
        monkeypatch.setattr(module, "FACET_CAP", 3)
        monkeypatch.setattr(module, "SEARCH_CANDIDATES", 4)
    AgentFactory.create_batch(6, tagline="helps with invoices", category=CategoryFactory())
    response = client.get(reverse("search"), {"q": "invoices"})
    html = response.content.decode()
    assert 'All categories <span class="chip-count">3+</span>' in html
    assert re.search(r'<span class="chip-count">4\+</span>', html)  # FACET_CAP + 1 counted
    assert len(_names(response)) == 4  # the bounded set, one page
    assert "More than 3 agents match: the results are the 4 best rated" in html


# --- My agents, stats -------------------------------------------------------------------------


def test_my_agents_lists_what_i_installed(client, user, other_user, django_assert_num_queries):
    mine, theirs = AgentFactory(name="Mine"), AgentFactory(name="Theirs")
    services.install_agent(user=user, agent=mine)
    services.install_agent(user=other_user, agent=theirs)
    client.force_login(user)
    with django_assert_num_queries(3):  # session, user, one page of installations
        response = client.get(reverse("my-agents"))
    html = response.content.decode()
    assert "Mine" in html and "Theirs" not in html


def test_my_agents_needs_login(client):
    response = client.get(reverse("my-agents"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_stats_page_draws_svg_charts(client, agent, user, django_assert_num_queries):
    services.install_agent(user=user, agent=agent)
    services.create_review(user=user, agent=agent, rating=4)
    with django_assert_num_queries(2):
        response = client.get(reverse("stats"))
    html = response.content.decode()
    assert response.status_code == 200
    assert html.count('<svg class="bar"') == 2 * 1  # one category, two bar charts
    assert 'class="column-chart"' in html
    assert "4 stars: 1 review" in html


# --- Accounts ---------------------------------------------------------------------------------


def test_signup_creates_and_logs_in_the_user(client):
    response = client.post(
        reverse("signup"),
        {"username": "carol", "password1": "a-long pass phrase", "password2": "a-long pass phrase"},
    )
    assert response.status_code == 302
    assert get_user_model().objects.filter(username="carol").exists()
    assert client.get(reverse("my-agents")).status_code == 200


def test_signup_errors_keep_the_form_filled_in(client):
    response = client.post(
        reverse("signup"),
        {"username": "carol", "email": "c@example.com", "password1": "x", "password2": "y"},
    )
    html = response.content.decode()
    assert response.status_code == 400
    assert 'value="carol"' in html and 'value="c@example.com"' in html
    assert "field-error" in html
    assert not get_user_model().objects.filter(username="carol").exists()


def test_login_and_password_change_pages_render(client, user):
    assert "Forgot your password?" in client.get(reverse("login")).content.decode()
    client.force_login(user)
    assert client.get(reverse("password_change")).status_code == 200


# --- Icons ------------------------------------------------------------------------------------


def test_agent_icon_is_served_with_srcset_and_immutable_caching(client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    agent = AgentFactory(name="Icon Agent")
    icons.generate_demo_icons(limit=5)
    agent.refresh_from_db()
    assert agent.icon.name.startswith("icons/gen/icon-agent-")

    html = client.get(agent.get_absolute_url()).content.decode()
    img = re.search(r'<img class="icon icon-128"[^>]+>', html).group(0)
    assert 'width="128" height="128"' in img and "-256.webp 2x" in img
    assert "loading" not in img  # the agent page's icon is above the fold

    url = re.search(r'src="([^"]+)"', img).group(1)
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/webp"
    assert response["Cache-Control"] == "max-age=31536000, public, immutable"


def test_icon_file_refuses_paths_outside_the_icon_directory(client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    (tmp_path / "secret.webp").write_bytes(b"x")
    assert client.get("/media/icons/../secret.webp").status_code == 404
    assert client.get("/media/icons/nope.webp").status_code == 404
