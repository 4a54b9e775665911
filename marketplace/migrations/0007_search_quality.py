"""PostgreSQL-only: a stored quality key, so search ranks a bounded candidate set.

- `search_quality`: a stored generated column, the quality factor of marketplace.search
  (`_quality()`: Bayesian rating and log installs). Generated, so every write path (services,
  admin, COPY, raw SQL) keeps it current. A test pins it to `_quality()` row for row;
  adding it rewrites the table once;
- `agent_active_quality_idx` on (search_quality, id) of listed agents: search takes its
  candidates (and a blank search its page) in this order;
- `agent_active_lname_idx` on lower(name) of listed agents: exact-name candidates, which
  search always adds, are one index lookup.

SQLite skips every step and computes `_quality()` in its queries.
"""

from django.db import migrations

# `marketplace.search._quality()` in SQL, frozen here as migrations are. GREATEST: a negative
# count must fail the table's CHECK constraint, not the logarithm first.
QUALITY_SQL = (
    "0.6 + 0.25 * ((rating_average * rating_count + 17.5) / (rating_count::float8 + 5.0)) / 5.0"
    " + 0.15 * LEAST(LN(GREATEST(install_count, 0)::float8 + 1.0) / 11.51293546492023, 1.0)"
)

FORWARDS = [
    "ALTER TABLE marketplace_agents ADD COLUMN IF NOT EXISTS search_quality float8"
    f" GENERATED ALWAYS AS ({QUALITY_SQL}) STORED",
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


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for statement in FORWARDS:
        schema_editor.execute(statement)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for statement in BACKWARDS:
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("marketplace", "0006_featured_rating_index")]
    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
