"""Database rules of the domain model: constraints, uniqueness, the report's indexes."""

import pytest
from django.db import IntegrityError, connection, transaction

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


def test_rating_distribution_reads_the_stored_histogram():
    agent = AgentFactory(ratings_1=1, ratings_5=3)
    assert agent.rating_distribution == {1: 1, 2: 0, 3: 0, 4: 0, 5: 3}
