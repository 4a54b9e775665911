"""aios.statements: a Shape's rows are the rows of the QuerySet it compiles once per vendor."""

import pytest
from django.db import connection

from aios import statements
from marketplace.models import Agent, Installation
from tests.factories import AgentFactory, CategoryFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_card_shape_rows_are_the_values_rows_for_every_filter():
    category = CategoryFactory(slug="writing")
    AgentFactory.create_batch(3, category=category, tags=["pdf"], rating_average=4.5)
    AgentFactory.create_batch(2, tags=["csv"], is_featured=True, rating_average=2.0)
    cases = [
        ({}, Agent.objects.listed()),
        ({"category": "writing"}, Agent.objects.listed().in_category("writing")),
        ({"featured": True}, Agent.objects.listed().filter(is_featured=True)),
        ({"tag": "pdf", "min_rating": 4.0}, Agent.objects.listed().with_tag("pdf").min_rating(4)),
    ]
    for filters, agents in cases:
        expected = list(agents.card_rows().order_by("id"))
        shape = Agent.objects.card_shape(**filters).then(("by-id",), lambda qs: qs.order_by("id"))
        assert shape.rows() == expected, filters
        assert shape.rows() == expected, filters  # the second run binds the compiled statement


def test_a_statement_is_compiled_once_per_shape_and_vendor(monkeypatch):
    user = UserFactory()
    Installation.objects.create(user=user, agent=AgentFactory())
    compiled = []
    real = statements.Statement

    def counting(queryset, conn):
        compiled.append(conn.vendor)
        return real(queryset, conn)

    monkeypatch.setattr(statements, "Statement", counting)
    # A key no other test uses, so this process has not compiled the shape before.
    key = ("compiled-once",)
    for _ in range(3):
        shape = Installation.objects.card_shape(user).then(key, lambda installations: installations)
        assert len(shape.rows()) == 1
    assert compiled == [connection.vendor]


def test_an_id_past_the_bigint_range_matches_no_row():
    AgentFactory()
    assert Agent.objects.listed_shape(2**63).rows() == []
