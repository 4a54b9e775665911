"""Database rules of the domain model: constraints, uniqueness, the report's indexes."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from knowledge.models import KnowledgeEntry
from marketplace.models import Agent, Installation, Review
from tests.factories import (
    AgentFactory,
    InstallationFactory,
    KnowledgeEntryFactory,
    ReviewFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def _index_columns(table: str) -> dict[str, list[str]]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return {name: info["columns"] for name, info in constraints.items() if info["index"]}


@pytest.mark.parametrize(
    ("table", "name", "leading"),
    [
        ("marketplace_agents", "idx_agents_category_rating", ["category_id", "rating_average"]),
        ("marketplace_agents", "idx_agents_is_active_featured", ["is_active", "is_featured"]),
        ("agent_installations", "idx_installations_user_agent", ["user_id", "agent_id"]),
        ("agent_reviews", "idx_reviews_agent_rating", ["agent_id", "rating"]),
        ("knowledge_entries", "idx_knowledge_user_type", ["user_id", "content_type"]),
    ],
)
def test_the_reports_indexes_exist_with_their_names_and_leading_columns(table, name, leading):
    indexes = _index_columns(table)
    assert name in indexes
    assert indexes[name][: len(leading)] == leading


def test_tables_carry_the_reports_names():
    assert Agent._meta.db_table == "marketplace_agents"
    assert Installation._meta.db_table == "agent_installations"
    assert Review._meta.db_table == "agent_reviews"
    assert KnowledgeEntry._meta.db_table == "knowledge_entries"


@pytest.mark.parametrize("rating", [0, 6, 100])
def test_database_rejects_a_rating_outside_1_to_5(rating):
    with pytest.raises(IntegrityError), transaction.atomic():
        ReviewFactory(rating=rating)


@pytest.mark.parametrize("rating", [1, 5])
def test_database_accepts_ratings_at_the_bounds(rating):
    assert ReviewFactory(rating=rating).pk


def test_one_review_per_user_and_agent():
    review = ReviewFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        ReviewFactory(user=review.user, agent=review.agent)
    # Another agent, or another user, is fine.
    ReviewFactory(user=review.user)
    ReviewFactory(agent=review.agent)


def test_one_installation_per_user_and_agent():
    installation = InstallationFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        InstallationFactory(user=installation.user, agent=installation.agent)


def test_database_rejects_an_unknown_knowledge_content_type():
    with pytest.raises(IntegrityError), transaction.atomic():
        KnowledgeEntryFactory(content_type="video")


def test_every_knowledge_content_type_is_accepted():
    user = UserFactory()
    for value, _label in KnowledgeEntry.ContentType.choices:
        KnowledgeEntryFactory(user=user, content_type=value)
    assert KnowledgeEntry.objects.filter(user=user).count() == 5


def test_counters_cannot_go_negative():
    agent = AgentFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Agent.objects.filter(pk=agent.pk).update(install_count=-1)


def test_average_rating_is_bounded():
    agent = AgentFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Agent.objects.filter(pk=agent.pk).update(rating_average=5.5)


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


def test_rating_distribution_reads_the_stored_histogram():
    agent = AgentFactory(ratings_1=1, ratings_5=3)
    assert agent.rating_distribution == {1: 1, 2: 0, 3: 0, 4: 0, 5: 3}


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
