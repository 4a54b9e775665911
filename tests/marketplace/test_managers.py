"""The QuerySet vocabulary (marketplace/managers.py): what each named shape selects, and in
how many queries."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.test.utils import CaptureQueriesContext

from marketplace.models import Agent, Category, Installation, Review
from tests.factories import (
    AgentFactory,
    CategoryFactory,
    InstallationFactory,
    PublisherFactory,
    ReviewFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


# --- AgentQuerySet ---------------------------------------------------------------------------


def test_listed_and_featured_leave_out_inactive_agents():
    shown = AgentFactory(is_featured=True)
    AgentFactory(is_featured=True, is_active=False)
    plain = AgentFactory()
    assert set(Agent.objects.listed()) == {shown, plain}
    assert list(Agent.objects.featured()) == [shown]


def test_category_publisher_and_rating_filters_narrow_by_slug_and_bound():
    writing, acme = CategoryFactory(slug="writing"), PublisherFactory(slug="acme")
    good = AgentFactory(category=writing, publisher=acme, rating_average=4.5)
    edge = AgentFactory(category=writing, rating_average=4.0)
    AgentFactory(publisher=acme, rating_average=3.9)
    assert set(Agent.objects.in_category("writing")) == {good, edge}
    assert set(Agent.objects.by_publisher("acme").min_rating(4)) == {good}
    assert set(Agent.objects.min_rating(4.0)) == {good, edge}  # the bound is included


def test_tag_filter_matches_whole_tags_only():
    tagged = AgentFactory(tags=["pdf", "ocr"])
    AgentFactory(tags=["pdf-export"])
    AgentFactory(tags=[])
    assert list(Agent.objects.with_tag("pdf")) == [tagged]
    assert list(Agent.objects.with_tag("ocr")) == [tagged]
    assert not Agent.objects.with_tag("pd").exists()


def test_ordering_names_sort_with_id_as_tiebreaker():
    a, b, c = (AgentFactory(rating_average=4.0) for _ in range(3))
    assert list(Agent.objects.ordered("-rating")) == [c, b, a]
    assert list(Agent.objects.ordered("name").values_list("name", flat=True)) == sorted(
        [a.name, b.name, c.name]
    )


def test_cards_read_category_and_publisher_in_the_same_query():
    AgentFactory.create_batch(3)
    with CaptureQueriesContext(connection) as queries:
        cards = list(Agent.objects.listed().for_cards())
        names = [(card.category.name, card.publisher.name) for card in cards]
    assert len(names) == 3 and len(queries) == 1


def test_card_rows_are_the_card_columns_without_model_instances():
    agent = AgentFactory(tags=["pdf"])
    (row,) = Agent.objects.card_rows()
    assert row["id"] == agent.pk and row["category__slug"] == agent.category.slug
    assert "is_active" not in row and "tags" not in row


def test_detail_reads_the_five_latest_visible_reviews_with_a_limit_not_a_window():
    agent = AgentFactory()
    reviews = ReviewFactory.create_batch(7, agent=agent)
    hidden = reviews[-1]
    Review.objects.filter(pk=hidden.pk).update(is_hidden=True)
    with CaptureQueriesContext(connection) as queries:
        fetched = Agent.objects.for_detail().get(pk=agent.pk)
        recent = fetched.recent_reviews
    assert len(queries) == 2  # the agent, then its reviews: one indexed LIMIT query
    assert "ROW_NUMBER" not in queries[1]["sql"].upper()
    assert "LIMIT 5" in queries[1]["sql"].upper()
    expected = Review.objects.filter(agent=agent, is_hidden=False).order_by("-created_at", "-id")
    assert [r.pk for r in recent] == [r.pk for r in expected[:5]]
    assert hidden.pk not in [r.pk for r in recent]


def test_the_viewer_sees_their_own_install_and_review_only():
    viewer, other = UserFactory(), UserFactory()
    installed, reviewed = AgentFactory(), AgentFactory()
    InstallationFactory(user=viewer, agent=installed)
    InstallationFactory(user=other, agent=reviewed)
    mine = ReviewFactory(user=viewer, agent=reviewed)
    ReviewFactory(user=other, agent=installed)
    agents = {a.pk: a for a in Agent.objects.for_viewer(viewer)}
    assert agents[installed.pk].viewer_installed and not agents[reviewed.pk].viewer_installed
    assert agents[installed.pk].viewer_reviews == [] and agents[reviewed.pk].viewer_reviews == [
        mine
    ]
    anonymous = Agent.objects.for_viewer(AnonymousUser())
    assert not any(agent.viewer_installed for agent in anonymous)


def test_detail_rows_say_whether_the_viewer_installed_the_agent():
    viewer, agent = UserFactory(), AgentFactory()
    InstallationFactory(user=viewer, agent=agent)
    (row,) = Agent.objects.filter(pk=agent.pk).detail_rows(viewer)
    assert row["viewer_installed"] and row["description"] == agent.description
    (anonymous,) = Agent.objects.filter(pk=agent.pk).detail_rows(AnonymousUser())
    assert "viewer_installed" not in anonymous


def test_count_by_category_counts_these_agents_in_menu_order():
    second, first = CategoryFactory(position=2), CategoryFactory(position=1)
    AgentFactory.create_batch(2, category=second)
    AgentFactory(category=first)
    AgentFactory(category=first, is_active=False)
    counts = [
        (row["category__slug"], row["count"]) for row in Agent.objects.listed().count_by_category()
    ]
    assert counts == [(first.slug, 1), (second.slug, 2)]


# --- CategoryQuerySet ------------------------------------------------------------------------


def test_category_agent_counts_count_listed_agents_in_one_query():
    category, empty = CategoryFactory(), CategoryFactory()
    AgentFactory.create_batch(2, category=category)
    AgentFactory(category=category, is_active=False)
    with CaptureQueriesContext(connection) as queries:
        counts = {c.pk: c.agent_count for c in Category.objects.with_agent_counts()}
    assert counts == {category.pk: 2, empty.pk: 0}
    assert len(queries) == 1


# --- InstallationQuerySet --------------------------------------------------------------------


def test_a_users_installations_come_newest_first_with_their_cards_in_one_query():
    user = UserFactory()
    older, newer = InstallationFactory.create_batch(2, user=user)
    InstallationFactory()  # someone else's
    with CaptureQueriesContext(connection) as queries:
        mine = list(Installation.objects.for_user(user).with_agent_cards())
        categories = [i.agent.category.name for i in mine]
    assert [i.pk for i in mine] == [newer.pk, older.pk]
    assert len(categories) == 2 and len(queries) == 1


def test_installation_card_rows_carry_the_agent_card_under_agent():
    installation = InstallationFactory()
    (row,) = Installation.objects.for_user(installation.user).card_rows()
    assert row["id"] == installation.pk
    assert row["agent__slug"] == installation.agent.slug
    assert row["agent__publisher__name"] == installation.agent.publisher.name


# --- ReviewQuerySet --------------------------------------------------------------------------


def test_an_agents_reviews_are_the_visible_ones_newest_first_with_their_authors():
    agent = AgentFactory()
    first, second = ReviewFactory.create_batch(2, agent=agent)
    ReviewFactory(agent=agent, is_hidden=True)
    ReviewFactory()  # another agent's
    with CaptureQueriesContext(connection) as queries:
        reviews = list(Review.objects.for_agent(agent))
        authors = [review.user.username for review in reviews]
    assert [r.pk for r in reviews] == [second.pk, first.pk]
    assert authors == [second.user.username, first.user.username] and len(queries) == 1


def test_review_rows_carry_the_author_and_own_rows_the_hidden_flag():
    review = ReviewFactory(is_hidden=True)
    (row,) = Review.objects.filter(pk=review.pk).rows()
    assert row["user__username"] == review.user.username and "is_hidden" not in row
    (own,) = Review.objects.filter(pk=review.pk).own_rows()
    assert own["is_hidden"] and "user__username" not in own
