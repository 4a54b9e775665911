"""aios.bulk_load: rows land as given (ids, timestamps), counted, with the schema intact after."""

import json
from datetime import UTC, datetime

import pytest
from django.core.management import CommandError
from django.db import connection

from aios.bulk_load import BulkLoader, columns_of, empty_tables, next_id
from knowledge.models import KnowledgeEntry
from marketplace.models import Category, Installation
from tests.factories import AgentFactory, CategoryFactory, UserFactory

pytestmark = pytest.mark.django_db

LONG_AGO = datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)


def category_rows(first_id: int, count: int):
    for i in range(count):
        yield (first_id + i, f"Loaded {i}", f"loaded-{i}", "", i)


def test_columns_are_the_models_concrete_fields_in_order():
    assert columns_of(Installation) == ["id", "user_id", "agent_id", "installed_at"]


def test_loaded_rows_keep_their_ids_and_the_timestamps_auto_now_would_overwrite():
    user, agent = UserFactory(), AgentFactory()
    tags = json.dumps(["t"])
    rows = [
        (900 + i, user.pk, "note", f"Entry {i}", "body", "", agent.pk, tags, LONG_AGO, LONG_AGO)
        for i in range(3)
    ]
    loader = BulkLoader(progress=False)
    with loader.atomic():
        loader.load("knowledge", KnowledgeEntry, rows, total=3)
    entries = KnowledgeEntry.objects.order_by("id")
    assert list(entries.values_list("id", flat=True)) == [900, 901, 902]
    assert {(e.created_at, e.updated_at, tuple(e.tags)) for e in entries} == {
        (LONG_AGO, LONG_AGO, ("t",))
    }
    [(label, written, seconds)] = loader.timings
    assert (label, written) == ("knowledge", 3) and seconds >= 0


def test_rows_missing_a_column_are_refused_with_the_models_columns():
    loader = BulkLoader(progress=False)
    with (
        pytest.raises(CommandError, match="id, name, slug, description, position"),
        loader.atomic(),
    ):
        loader.load("categories", Category, [(1, "Short", "short", "")], total=1)
    assert not Category.objects.exists()


def test_a_load_that_writes_fewer_rows_than_planned_fails():
    loader = BulkLoader(progress=False)
    with pytest.raises(CommandError, match="wrote 2 rows, planned 3"), loader.atomic():
        loader.load("categories", Category, category_rows(1, 2), total=3)
    assert not Category.objects.exists()


def test_finish_moves_the_id_sequences_past_the_loaded_ids():
    loader = BulkLoader(progress=False)
    loader.load("categories", Category, category_rows(500, 2), total=2)
    loader.finish([Category])
    assert CategoryFactory().pk == 502
    assert next_id(Category) == 503
    assert [label for label, _, _ in loader.timings] == ["categories", "(analyze)"]


def test_empty_tables_deletes_every_row_and_next_id_starts_again():
    CategoryFactory.create_batch(2)
    empty_tables([Category])
    assert not Category.objects.exists()
    assert next_id(Category) == 1


def schema() -> set:
    """Every index and constraint of the database, by table."""
    with connection.cursor() as cursor:
        return {
            (table, name, tuple(sorted(c["columns"] or ())), c["foreign_key"])
            for table in connection.introspection.table_names(cursor)
            for name, c in connection.introspection.get_constraints(cursor, table).items()
        }


def test_indexes_rebuilt_after_the_load_leave_the_schema_as_it_was(vendor):
    before = schema()
    loader = BulkLoader(progress=False)
    with loader.atomic():
        with loader.indexes_rebuilt_after([Category, Installation]):
            during = schema()
            loader.load("categories", Category, category_rows(1, 3), total=3)
        assert schema() == before
    assert Category.objects.count() == 3
    dropped = {name for table, name, _, _ in before - during}
    if vendor == "postgresql":
        # Secondary indexes and foreign keys go for the load; primary and unique keys stay.
        assert "idx_installations_user_agent" in dropped
        assert "installation_one_per_user" not in dropped
        assert any(fk for table, _, _, fk in before - during if table == "agent_installations")
        assert "(indexes)" in [label for label, _, _ in loader.timings]
    else:
        assert dropped == set()
