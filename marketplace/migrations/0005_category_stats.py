"""CategoryStats: per-category sums of the agent counters, kept exact by database triggers.

Triggers rather than signals: agent counters move through relative UPDATEs, QuerySet.update(),
bulk updates, the admin, seed_demo's COPY and raw SQL, and every path must move the rollup in
the same transaction.

- PostgreSQL: statement-level AFTER triggers with transition tables. One aggregate per
  statement, so a COPY of 100,000 agents or a bulk update costs one upsert per touched
  (category, shard), not one per row. The upsert locks its rows in (category, shard) order,
  and only once the statement holds every agent row it writes, so transactions that write
  agents in one statement each (every service) cannot deadlock on the rollup, whether a
  statement writes one agent or many. Groups whose sums did not change (an update of a
  description, a recount that found nothing) touch no rollup row at all. The table keeps
  80% of each page free for the row versions those upserts write.
- SQLite: row-level triggers (the only kind it has), the UPDATE one only when a column the
  rollup reads changed. SQLite has one writer at a time, so lock order does not arise.

Both subtract the old rows' contributions and add the new rows', with an upsert on
(category, shard) (SQLite subtracts with a plain UPDATE: the agent's insert made the row).
The migration then fills the table from the agents already there, and its reverse drops
the triggers before the table goes.
"""

# ruff: noqa: S608  every name and expression in the SQL below is a constant of this module

import django.db.models.deletion
from django.db import NotSupportedError, migrations, models

# marketplace.models.STATS_SHARDS when this migration was written: the triggers and the
# rows they keep must agree, so a later change of shard count needs its own migration.
SHARDS = 16
TABLE = "marketplace_category_stats"
AGENTS = "marketplace_agents"


def _contribution(row: str) -> dict[str, str]:
    """Rollup column -> what one agent row (`row` is its alias) adds to its stripe."""
    return {
        "agents": "1",
        "active_agents": f"CASE WHEN {row}.is_active THEN 1 ELSE 0 END",
        "featured_agents": f"CASE WHEN {row}.is_active AND {row}.is_featured THEN 1 ELSE 0 END",
        "installs": f"{row}.install_count",
        "active_installs": f"CASE WHEN {row}.is_active THEN {row}.install_count ELSE 0 END",
        "reviews": f"{row}.rating_count",
        **{f"ratings_{r}": f"{row}.ratings_{r}" for r in range(1, 6)},
    }


COLUMNS = list(_contribution("a"))
# Columns of an agent row the rollup reads (id picks the shard).
READS = ["id", "category_id", "is_active", "is_featured", "install_count", "rating_count"] + [
    f"ratings_{r}" for r in range(1, 6)
]

INSERT_COLUMNS = ", ".join(["category_id", "shard", *COLUMNS])


def _add_to_existing(existing: str) -> str:
    return ", ".join(f"{c} = {existing}{c} + excluded.{c}" for c in COLUMNS)


# --- PostgreSQL ---------------------------------------------------------------------------


def _pg_changes(table: str, sign: str) -> str:
    contribution = ", ".join(f"{sign}({e}) AS {c}" for c, e in _contribution("a").items())
    return f"SELECT a.category_id, a.id % {SHARDS} AS shard, {contribution} FROM {table} a"


def _pg_upsert(*changes: str) -> str:
    sums = ", ".join(f"sum({c})" for c in COLUMNS)
    changed = " OR ".join(f"sum({c}) <> 0" for c in COLUMNS)
    return f"""
        INSERT INTO {TABLE} AS s ({INSERT_COLUMNS})
        SELECT category_id, shard, {sums}
        FROM ({" UNION ALL ".join(changes)}) AS c
        GROUP BY category_id, shard
        HAVING {changed}
        ORDER BY category_id, shard
        ON CONFLICT (category_id, shard) DO UPDATE SET {_add_to_existing("s.")};"""


POSTGRES_FORWARDS = [
    # Every install and review rewrites a row here. Room on each page keeps the new versions
    # HOT (no index entries) and lets page pruning reclaim the old ones between VACUUMs.
    f"ALTER TABLE {TABLE} SET (fillfactor = 20)",
    f"""
    CREATE FUNCTION marketplace_category_stats_apply() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            {_pg_upsert(_pg_changes("new_rows", ""))}
        ELSIF TG_OP = 'DELETE' THEN
            {_pg_upsert(_pg_changes("old_rows", "-"))}
        ELSE
            {_pg_upsert(_pg_changes("new_rows", ""), _pg_changes("old_rows", "-"))}
        END IF;
        RETURN NULL;
    END
    $$
    """,
    # One trigger per event: a transition table exists only for the events that have it.
    f"""
    CREATE TRIGGER category_stats_on_insert AFTER INSERT ON {AGENTS}
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION marketplace_category_stats_apply()
    """,
    f"""
    CREATE TRIGGER category_stats_on_update AFTER UPDATE ON {AGENTS}
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION marketplace_category_stats_apply()
    """,
    f"""
    CREATE TRIGGER category_stats_on_delete AFTER DELETE ON {AGENTS}
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION marketplace_category_stats_apply()
    """,
]

POSTGRES_BACKWARDS = [
    f"DROP TRIGGER IF EXISTS category_stats_on_insert ON {AGENTS}",
    f"DROP TRIGGER IF EXISTS category_stats_on_update ON {AGENTS}",
    f"DROP TRIGGER IF EXISTS category_stats_on_delete ON {AGENTS}",
    "DROP FUNCTION IF EXISTS marketplace_category_stats_apply()",
]


# --- SQLite -------------------------------------------------------------------------------


def _sqlite_add(row: str) -> str:
    values = ", ".join(_contribution(row).values())
    return f"""
        INSERT INTO {TABLE} ({INSERT_COLUMNS})
        VALUES ({row}.category_id, {row}.id % {SHARDS}, {values})
        ON CONFLICT (category_id, shard) DO UPDATE SET {_add_to_existing("")};"""


def _sqlite_subtract(row: str) -> str:
    changes = ", ".join(f"{c} = {c} - ({e})" for c, e in _contribution(row).items())
    return f"""
        UPDATE {TABLE} SET {changes}
        WHERE category_id = {row}.category_id AND shard = {row}.id % {SHARDS};"""


_changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in READS)

SQLITE_FORWARDS = [
    f"""
    CREATE TRIGGER category_stats_on_insert AFTER INSERT ON {AGENTS}
    BEGIN {_sqlite_add("NEW")}
    END
    """,
    f"""
    CREATE TRIGGER category_stats_on_update AFTER UPDATE ON {AGENTS}
    WHEN {_changed}
    BEGIN {_sqlite_subtract("OLD")} {_sqlite_add("NEW")}
    END
    """,
    f"""
    CREATE TRIGGER category_stats_on_delete AFTER DELETE ON {AGENTS}
    BEGIN {_sqlite_subtract("OLD")}
    END
    """,
]

SQLITE_BACKWARDS = [
    "DROP TRIGGER IF EXISTS category_stats_on_insert",
    "DROP TRIGGER IF EXISTS category_stats_on_update",
    "DROP TRIGGER IF EXISTS category_stats_on_delete",
]


# --- Both ---------------------------------------------------------------------------------

_totals = ", ".join(f"sum({e})" for e in _contribution("a").values())
FILL = f"""
    INSERT INTO {TABLE} ({INSERT_COLUMNS})
    SELECT a.category_id, a.id % {SHARDS}, {_totals}
    FROM {AGENTS} a
    GROUP BY a.category_id, a.id % {SHARDS}
"""


def forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        statements = POSTGRES_FORWARDS
    elif vendor == "sqlite":
        statements = SQLITE_FORWARDS
    else:
        # The project runs on PostgreSQL or SQLite (README, Settings): say so, loudly.
        raise NotSupportedError(
            f"category stats triggers exist for postgresql and sqlite, not {vendor}"
        )
    # Triggers first: on PostgreSQL creating them locks out agent writes until the commit,
    # so no write can land between the fill's snapshot and the triggers.
    for statement in [*statements, FILL]:
        # params=None: `%` is SQL's modulo here, not a placeholder.
        schema_editor.execute(statement, params=None)


def backwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for statement in POSTGRES_BACKWARDS if vendor == "postgresql" else SQLITE_BACKWARDS:
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("marketplace", "0004_drop_redundant_indexes"),
    ]

    operations = [
        migrations.CreateModel(
            name="CategoryStats",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("shard", models.PositiveSmallIntegerField()),
                ("agents", models.BigIntegerField(default=0)),
                ("active_agents", models.BigIntegerField(default=0)),
                (
                    "featured_agents",
                    models.BigIntegerField(default=0, help_text="Active and featured."),
                ),
                ("installs", models.BigIntegerField(default=0)),
                (
                    "active_installs",
                    models.BigIntegerField(default=0, help_text="Installs of active agents."),
                ),
                ("reviews", models.BigIntegerField(default=0, help_text="Sum of rating_count.")),
                ("ratings_1", models.BigIntegerField(default=0)),
                ("ratings_2", models.BigIntegerField(default=0)),
                ("ratings_3", models.BigIntegerField(default=0)),
                ("ratings_4", models.BigIntegerField(default=0)),
                ("ratings_5", models.BigIntegerField(default=0)),
                (
                    "category",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="stats",
                        to="marketplace.category",
                    ),
                ),
            ],
            options={
                "verbose_name_plural": "category stats",
                "db_table": "marketplace_category_stats",
                "constraints": [
                    models.UniqueConstraint(
                        fields=("category", "shard"), name="category_stats_shard"
                    )
                ],
            },
        ),
        migrations.RunPython(forwards, backwards, elidable=False),
    ]
