"""PostgreSQL-only: a GIN index for tag containment (`tags @> '["x"]'`). SQLite skips it."""

from django.db import migrations


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS agent_tags_gin_idx "
        "ON marketplace_agents USING gin (tags jsonb_path_ops)"
    )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS agent_tags_gin_idx")


class Migration(migrations.Migration):
    dependencies = [("marketplace", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
