"""PostgreSQL-only: a stored quality key, so search ranks a bounded candidate set.

- `search_quality`: a stored generated column, compiled from `marketplace.managers.quality()`
  (Bayesian rating and log installs). Generated, so every write path (services, admin, COPY,
  raw SQL) keeps it current; adding it rewrites the table once;
- `agent_active_quality_idx` on (search_quality, id) of listed agents: search takes its
  candidates (and a blank search its page) in this order;
- `agent_active_lname_idx` on lower(name) of listed agents: exact-name candidates, which
  search always adds, are one index lookup.

SQLite skips every step and computes `quality()` in its queries.
"""

from django.db import migrations
from django.db.models.sql import Query

# The formula's one definition; managers imports no model, so it is safe to import here.
from marketplace.managers import quality

INDEXES = [
    "CREATE INDEX IF NOT EXISTS agent_active_quality_idx"
    " ON marketplace_agents (search_quality DESC, id DESC) WHERE is_active",
    "CREATE INDEX IF NOT EXISTS agent_active_lname_idx"
    " ON marketplace_agents (lower(name)) WHERE is_active",
    "ANALYZE marketplace_agents",
]

BACKWARDS = [
    "DROP INDEX IF EXISTS agent_active_lname_idx",
    "DROP INDEX IF EXISTS agent_active_quality_idx",
    "ALTER TABLE marketplace_agents DROP COLUMN IF EXISTS search_quality",
]


def quality_sql(model, connection) -> tuple[str, list]:
    """`quality()` as SQL over `model`'s bare column names, as a generated column needs."""
    query = Query(model, alias_cols=False)
    expression = quality().resolve_expression(query, allow_joins=False)
    return query.get_compiler(connection=connection).compile(expression)


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    sql, params = quality_sql(apps.get_model("marketplace", "Agent"), schema_editor.connection)
    schema_editor.execute(
        "ALTER TABLE marketplace_agents ADD COLUMN IF NOT EXISTS search_quality float8"
        f" GENERATED ALWAYS AS ({sql}) STORED",
        params,
    )
    for statement in INDEXES:
        schema_editor.execute(statement)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for statement in BACKWARDS:
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("marketplace", "0006_featured_rating_index")]
    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
