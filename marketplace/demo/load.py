"""Putting a demo data set in the database: deleting the previous one, loading a new one.

The rows go through `aios.bulk_load` (COPY on PostgreSQL); the database triggers on the agent
table sum the stored counters into the per-category rollup (CategoryStats) as agents are loaded.
"""

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from django.db import connection

from aios.bulk_load import BulkLoader, empty_tables, next_id
from marketplace.demo.plan import DEMO_EMAIL_DOMAIN, Shape, make_plan
from marketplace.demo.rows import other_tables, tables
from marketplace.models import Agent, Category, CategoryStats, Installation, Publisher, Review

User = get_user_model()

# In deletion order. CategoryStats is written by triggers as the agents are loaded (one
# aggregate per COPY on PostgreSQL); it is emptied with them, before the categories it points at.
MARKETPLACE_MODELS = (Review, Installation, Agent, CategoryStats, Publisher, Category)


def seeded_models() -> tuple:
    """Every seeded model in deletion order: other apps' tables point at ours, so they go first."""
    return (*(table.model for table in other_tables()), *MARKETPLACE_MODELS)


def load_demo(shape: Shape, seed: int, *, loader: BulkLoader, taken: set[str]) -> None:
    """Plan the data set and load it after the rows already there (call inside loader.atomic()).

    `taken`: the demo usernames real users have (see `taken_usernames`); those are skipped.
    """
    first_ids = {
        "user": next_id(User),
        "category": next_id(Category),
        "publisher": next_id(Publisher),
        "agent": next_id(Agent),
        "installation": next_id(Installation),
        "review": next_id(Review),
        **{table.label: next_id(table.model) for table in other_tables()},
    }
    plan = make_plan(
        shape, seed, first_ids=first_ids, admin="admin" not in taken, demo="demo" not in taken
    )
    seeded = seeded_models()
    with loader.indexes_rebuilt_after(seeded):
        for label, model, rows, total in tables(plan):
            loader.load(label, model, rows, total=total)
    loader.finish([User, *seeded])


def taken_usernames() -> set[str]:
    """Usernames the demo needs that belong to real users (those accounts are skipped)."""
    if User.objects.filter(username__regex=r"^user[0-9]{6,}$").exists():
        raise CommandError(
            "Users named like the demo users (user000001...) exist but are not demo users: "
            "refusing to mix them."
        )
    return set(
        User.objects.filter(username__in=("admin", "demo")).values_list("username", flat=True)
    )


def delete_demo_data() -> None:
    """Empty the seeded tables (the marketplace's and other apps') and delete the demo users.

    Raw statements, not QuerySet.delete(): the user-delete signals recount agents per
    user, which at bench scale would take hours.
    """
    seeded = seeded_models()
    empty_tables(seeded)
    demo_users = User.objects.filter(email__endswith=f"@{DEMO_EMAIL_DOMAIN}").values("pk")
    # Rows of other apps that point at demo users (tokens, admin log, groups) go first.
    for relation in User._meta.related_objects:
        related = relation.related_model
        if related in seeded:
            continue
        if relation.many_to_many:
            through = relation.through
            fk = next(f for f in through._meta.fields if f.related_model is User)
            through.objects.filter(**{f"{fk.name}__in": demo_users}).delete()
            continue
        rows = related._base_manager.filter(**{f"{relation.field.name}__in": demo_users})
        if relation.on_delete.__name__ == "SET_NULL":
            rows.update(**{relation.field.name: None})
        else:
            rows.delete()
    for field in User._meta.many_to_many:
        through = field.remote_field.through
        through.objects.filter(user__in=demo_users).delete()
    user_table = connection.ops.quote_name(User._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {user_table} WHERE email LIKE %s",  # noqa: S608  name from _meta
            [f"%@{DEMO_EMAIL_DOMAIN}"],
        )
