"""Writes with side effects. Each keeps the agent counters exact in the same transaction.

Counters move by relative UPDATEs (`SET n = n + 1`), never read-modify-write, so concurrent
requests serialise on the agent row and none is lost. Rows that decide a counter change are
locked (`select_for_update`) before they are read.
"""

from collections.abc import Iterable

from django.db import IntegrityError, connection, transaction
from django.db.models import (
    Count,
    F,
    FloatField,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Cast, Coalesce, NullIf
from django.db.models.sql import UpdateQuery

from aios import statements
from aios.statements import Slot

from . import caching
from .models import (
    RATINGS,
    STATS_SHARDS,
    Agent,
    Category,
    CategoryStats,
    Installation,
    Review,
    rating_average,
)


class AgentUnavailable(Exception):
    """The agent does not exist or is not active."""


class ReviewAlreadyExists(Exception):
    """The user already reviewed this agent (one review per user and agent)."""


class InvalidRating(ValueError):
    """A rating outside 1..5."""


def _check_rating(rating) -> int:
    if isinstance(rating, bool) or not isinstance(rating, int) or rating not in RATINGS:
        raise InvalidRating("Rating must be a whole number from 1 to 5.")
    return rating


def _weighted_rating_sum():
    return sum((F(f"ratings_{r}") * r for r in RATINGS), Value(0))


def _rating_average(weighted_sum, count):
    """The stored rating average: sum of ratings / their number, 0.0 with no rating."""
    return Coalesce(
        Cast(weighted_sum, FloatField()) / Cast(NullIf(count, 0), FloatField()), Value(0.0)
    )


def _rating_changes(*, add: int | None = None, remove: int | None = None) -> dict:
    """UPDATE assignments for one review entering (`add`) and/or leaving (`remove`) the counts.

    In an UPDATE every F() reads the row's old values, so the new average is computed from
    the old histogram plus the change, in the same statement that changes the histogram.
    """
    changes = {}
    if add:
        changes[f"ratings_{add}"] = F(f"ratings_{add}") + 1
    if remove:
        changes[f"ratings_{remove}"] = F(f"ratings_{remove}") - 1
    count_delta = (1 if add else 0) - (1 if remove else 0)
    new_count = F("rating_count") + count_delta
    new_sum = _weighted_rating_sum() + ((add or 0) - (remove or 0))
    changes["rating_count"] = new_count
    changes["rating_average"] = _rating_average(new_sum, new_count)
    return changes


def _active_agent_or_fail(agent: Agent) -> None:
    if not agent.is_active or not Agent.objects.filter(pk=agent.pk, is_active=True).exists():
        raise AgentUnavailable(agent.pk)


def _counter_changes(*, installs: int, add: int | None, remove: int | None) -> dict:
    changes = {"install_count": F("install_count") + installs} if installs else {}
    if add or remove:
        changes.update(_rating_changes(add=add, remove=remove))
    return changes


def _move_counters(agent_id: int, *, only_active: bool, **change):
    """UPDATE the agent's counters (`installs`, `add`, `remove`: see _counter_changes) and
    return its (category slug, featured) from the same statement (UPDATE ... RETURNING:
    PostgreSQL, SQLite >= 3.35), or None when no row matched (`only_active`: the agent is
    inactive, or gone).

    One statement instead of an EXISTS before and a SELECT after (install 11 -> 9 statements,
    review 10 -> 8), compiled once per change (building the rating UPDATE's expressions cost
    more than running it). The UPDATE's row lock keeps the category and featured flag it
    returns from changing under us until commit (an edit that does change them retires the
    catalog)."""

    def compile_sql():
        agents = Agent.objects.filter(pk=Slot("pk", Agent._meta.pk))
        if only_active:
            agents = agents.filter(is_active=True)
        query = agents.query.chain(UpdateQuery)
        query.add_update_values(_counter_changes(**change))
        sql, params = query.get_compiler(connection=connection).as_sql()
        q = connection.ops.quote_name
        agent, category = q(Agent._meta.db_table), q(Category._meta.db_table)
        # Identifiers from the models' metadata, never typed; the values stay parameters.
        returning = (
            f" RETURNING (SELECT {category}.{q(Category._meta.get_field('slug').column)}"  # noqa: S608
            f" FROM {category} WHERE {category}.{q(Category._meta.pk.column)}"
            f" = {agent}.{q(Agent._meta.get_field('category').column)}),"
            f" {agent}.{q(Agent._meta.get_field('is_featured').column)}"
        )
        return sql + returning, list(params)

    key = ("agent-counters", only_active, *sorted(change.items()))
    sql, params = statements.compiled_sql(key, compile_sql, connection)
    with connection.cursor() as cursor:
        cursor.execute(sql, statements.bind(params, {"pk": agent_id}, connection))
        row = cursor.fetchone()
    return None if row is None else (row[0], bool(row[1]))


def _move_counters_and_forget(
    agent_id: int,
    user_id: int,
    *,
    installs: int = 0,
    add: int | None = None,
    remove: int | None = None,
    review: bool = False,
    only_active: bool = False,
) -> None:
    """Move an agent's counters and retire, on commit, what shows them (a review's text too:
    the agent's pages show it). AgentUnavailable (rolling the caller's transaction back) when
    `only_active` and the agent is not active."""
    moved = _move_counters(
        agent_id, only_active=only_active, installs=installs, add=add, remove=remove
    )
    if moved is None:
        raise AgentUnavailable(agent_id)
    category, featured = moved
    caching.forget_counters_on_commit(
        agent_ids=[agent_id],
        user_ids=[user_id],
        categories=[category],
        featured=featured,
        content=review,
    )


# --- Installations ------------------------------------------------------------------------


def _insert_unless_exists(instance) -> bool:
    """INSERT the unsaved `instance` unless its user already has a row for its agent: True
    (and its pk set) when it was inserted.

    INSERT ... ON CONFLICT DO NOTHING RETURNING (PostgreSQL, SQLite >= 3.35): one statement
    where create() under a savepoint took three (the savepoint, the INSERT, its release), and
    losing a race with the same user's other request needs no savepoint to survive. Columns
    and values come from the model's fields, as save() would write them."""
    meta, q = instance._meta, connection.ops.quote_name
    fields = [field for field in meta.concrete_fields if not field.primary_key]
    values = [f.get_db_prep_save(f.pre_save(instance, add=True), connection) for f in fields]
    conflict = ", ".join(q(meta.get_field(name).column) for name in ("agent", "user"))
    sql = (
        f"INSERT INTO {q(meta.db_table)} ({', '.join(q(f.column) for f in fields)})"  # noqa: S608
        f" VALUES ({', '.join(['%s'] * len(fields))}) ON CONFLICT ({conflict}) DO NOTHING"
        f" RETURNING {q(meta.pk.column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        row = cursor.fetchone()
    if row is None:
        return False
    instance.pk = row[0]
    instance._state.adding, instance._state.db = False, connection.alias
    return True


@transaction.atomic
def install_agent(*, user, agent: Agent) -> tuple[Installation, bool]:
    """Install `agent` for `user`; idempotent. Returns (installation, created)."""
    if not agent.is_active:
        raise AgentUnavailable(agent.pk)
    for _ in range(3):
        installation = Installation(user=user, agent=agent)
        if not _insert_unless_exists(installation):
            # Someone (another request of the same user) installed it first.
            _active_agent_or_fail(agent)
            existing = Installation.objects.filter(user=user, agent=agent).first()
            if existing is not None:
                return existing, False
            continue  # ... and uninstalled it again in between: try once more
        # Checks the agent is still active in the UPDATE itself.
        _move_counters_and_forget(agent.pk, user.pk, installs=1, only_active=True)
        return installation, True
    raise IntegrityError("install kept racing with uninstall")


@transaction.atomic
def uninstall_agent(*, user, agent: Agent) -> bool:
    """Remove the installation if there is one. Returns whether anything was removed."""
    deleted, _ = Installation.objects.filter(user=user, agent=agent).delete()
    if not deleted:
        return False
    # Only the transaction whose DELETE removed the row gets here, so this runs once.
    _move_counters_and_forget(agent.pk, user.pk, installs=-1)
    return True


# --- Reviews ------------------------------------------------------------------------------


@transaction.atomic
def create_review(*, user, agent: Agent, rating: int, title: str = "", body: str = "") -> Review:
    _check_rating(rating)
    if not agent.is_active:
        raise AgentUnavailable(agent.pk)
    review = Review(user=user, agent=agent, rating=rating, title=title, body=body)
    if not _insert_unless_exists(review):
        _active_agent_or_fail(agent)  # an inactive agent answers as such, reviewed or not
        raise ReviewAlreadyExists(agent.pk)
    # Checks the agent is still active in the UPDATE itself.
    _move_counters_and_forget(agent.pk, user.pk, add=rating, review=True, only_active=True)
    return review


def _lock_review_row(review: Review) -> Review | None:
    """The review re-read under a row lock (SELECT ... FOR UPDATE); None once it is deleted."""
    return Review.objects.select_for_update().filter(pk=review.pk).first()


@transaction.atomic
def update_review(*, review: Review, rating=None, title=None, body=None) -> Review:
    """Change any of rating, title and body; the counters follow a rating change."""
    if rating is not None:
        _check_rating(rating)
    locked = _lock_review_row(review)
    if locked is None:
        raise Review.DoesNotExist(review.pk)
    old_rating = locked.rating
    if rating is not None:
        locked.rating = rating
    if title is not None:
        locked.title = title
    if body is not None:
        locked.body = body
    locked.save()
    if not locked.is_hidden and locked.rating != old_rating:
        _move_counters_and_forget(
            locked.agent_id, locked.user_id, add=locked.rating, remove=old_rating, review=True
        )
    else:  # the text only shows on the agent's pages and the author's own data
        caching.forget_on_commit(
            agent_ids=[locked.agent_id], user_ids=[locked.user_id], lists=False
        )
    return locked


@transaction.atomic
def delete_review(*, review: Review) -> bool:
    locked = _lock_review_row(review)
    if locked is None:
        return False
    locked.delete()
    if not locked.is_hidden:
        _move_counters_and_forget(
            locked.agent_id, locked.user_id, remove=locked.rating, review=True
        )
    else:
        caching.forget_on_commit(
            agent_ids=[locked.agent_id], user_ids=[locked.user_id], lists=False
        )
    return True


@transaction.atomic
def set_review_hidden(*, review: Review, hidden: bool) -> bool:
    """Hide or show a review (moderation); hidden reviews do not count. Returns if it changed."""
    locked = _lock_review_row(review)
    if locked is None or locked.is_hidden == hidden:
        return False
    Review.objects.filter(pk=locked.pk).update(is_hidden=hidden)
    change = {"remove": locked.rating} if hidden else {"add": locked.rating}
    _move_counters_and_forget(locked.agent_id, locked.user_id, **change, review=True)
    return True


# --- Agents -------------------------------------------------------------------------------


@transaction.atomic
def set_agents_flag(*, agent_ids: Iterable[int], is_featured=None, is_active=None) -> int:
    """Feature/unfeature or activate/deactivate agents in one UPDATE. Returns rows changed."""
    changes = {}
    if is_featured is not None:
        changes["is_featured"] = is_featured
    if is_active is not None:
        changes["is_active"] = is_active
    ids = list(agent_ids)
    if not changes or not ids:
        return 0
    changed = Agent.objects.filter(pk__in=ids).exclude(**changes).update(**changes)
    # update() skips signals and caching receivers: forget explicitly.
    caching.forget_on_commit(agent_ids=ids)
    return changed


# --- Counter repair -----------------------------------------------------------------------

COUNTER_FIELDS = ("install_count", "rating_count", *(f"ratings_{r}" for r in RATINGS))


def _true_counts() -> dict:
    installs = (
        Installation.objects.filter(agent=OuterRef("pk"))
        .order_by()
        .values("agent")
        .annotate(n=Count("pk"))
        .values("n")
    )
    visible = (
        Review.objects.filter(agent=OuterRef("pk"), is_hidden=False).order_by().values("agent")
    )
    counts = {"install_count": Coalesce(Subquery(installs, output_field=IntegerField()), 0)}
    for r in RATINGS:
        per_rating = visible.annotate(n=Count("pk", filter=Q(rating=r))).values("n")
        counts[f"ratings_{r}"] = Coalesce(Subquery(per_rating, output_field=IntegerField()), 0)
    return counts


def find_counter_drift(agent_ids: Iterable[int] | None = None) -> list[dict]:
    """Agents whose stored counters disagree with their rows: [{id, field: (stored, true)}]."""
    qs = Agent.objects.all() if agent_ids is None else Agent.objects.filter(pk__in=list(agent_ids))
    true = {f"true_{k}": v for k, v in _true_counts().items()}
    drift = []
    fields = ("id", "slug", "rating_average", *COUNTER_FIELDS)
    for row in qs.order_by("id").annotate(**true).values(*fields, *true):
        counted = ("install_count", *(f"ratings_{r}" for r in RATINGS))
        expected = {f: row[f"true_{f}"] for f in counted}
        expected["rating_count"] = sum(expected[f"ratings_{r}"] for r in RATINGS)
        expected_avg = rating_average([expected[f"ratings_{r}"] for r in RATINGS])
        diff = {f: (row[f], v) for f, v in expected.items() if row[f] != v}
        if abs(row["rating_average"] - expected_avg) > 1e-9:
            diff["rating_average"] = (row["rating_average"], expected_avg)
        if diff:
            drift.append({"id": row["id"], "slug": row["slug"], **diff})
    return drift


@transaction.atomic
def recount_agents(agent_ids: Iterable[int] | None = None) -> int:
    """Set every counter of the given agents (all when None) from the rows."""
    ids = None if agent_ids is None else list(agent_ids)
    qs = Agent.objects.all() if ids is None else Agent.objects.filter(pk__in=ids)
    updated = qs.update(**_true_counts())
    # Second pass derives count and average from the histogram just written.
    qs.update(
        rating_count=sum((F(f"ratings_{r}") for r in RATINGS), Value(0)),
        rating_average=_rating_average(
            _weighted_rating_sum(), sum((F(f"ratings_{r}") for r in RATINGS), Value(0))
        ),
    )
    if ids is None:
        caching.forget_all_on_commit()
    else:
        caching.forget_on_commit(agent_ids=ids)
    return updated


# --- Category stats rollup ----------------------------------------------------------------
# Database triggers keep CategoryStats exact (migration 0005); these check and rebuild it.

_ACTIVE = Q(is_active=True)
# CategoryStats column -> its sum over the agent rows of one (category, shard).
_STATS_SUMS = {
    "agents": Count("pk"),
    "active_agents": Count("pk", filter=_ACTIVE),
    "featured_agents": Count("pk", filter=_ACTIVE & Q(is_featured=True)),
    "installs": Coalesce(Sum("install_count"), 0),
    "active_installs": Coalesce(Sum("install_count", filter=_ACTIVE), 0),
    "reviews": Coalesce(Sum("rating_count"), 0),
    **{f"ratings_{r}": Coalesce(Sum(f"ratings_{r}"), 0) for r in RATINGS},
}
STATS_COLUMNS = CategoryStats.SUM_FIELDS  # each has its sum above


def _lock_agents_for_stats() -> None:
    """Hold agent writes (not reads) until the transaction ends, so the agent rows and the
    rollup are read, and the rollup rewritten, at one point in time. SQLite has one writer."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {Agent._meta.db_table} IN SHARE MODE")


def _fresh_category_stats() -> dict[tuple[int, int], dict]:
    rows = (
        Agent.objects.order_by()
        .values("category_id", shard=F("pk") % STATS_SHARDS)
        # Prefixed: `reviews` is already the name of a relation of Agent.
        .annotate(**{f"sum_{c}": e for c, e in _STATS_SUMS.items()})
    )
    return {
        (row["category_id"], row["shard"]): {c: row[f"sum_{c}"] for c in STATS_COLUMNS}
        for row in rows
    }


@transaction.atomic
def find_stats_drift() -> list[dict]:
    """CategoryStats rows that disagree with a fresh aggregate of the agent rows:
    [{category_id, shard, column: (stored, true)}], a missing row counting as zeros.
    Agent writes wait until the caller's transaction ends (a consistent reading)."""
    _lock_agents_for_stats()
    stored = {
        (row.pop("category_id"), row.pop("shard")): row
        for row in CategoryStats.objects.values("category_id", "shard", *STATS_COLUMNS)
    }
    fresh = _fresh_category_stats()
    zeros = dict.fromkeys(STATS_COLUMNS, 0)
    drift = []
    for key in sorted(stored.keys() | fresh.keys()):
        have, want = stored.get(key, zeros), fresh.get(key, zeros)
        diff = {c: (have[c], want[c]) for c in STATS_COLUMNS if have[c] != want[c]}
        if diff:
            drift.append({"category_id": key[0], "shard": key[1], **diff})
    return drift


@transaction.atomic
def rebuild_category_stats() -> int:
    """Replace every CategoryStats row with a fresh aggregate of the agent rows. Returns
    the number of rows written."""
    _lock_agents_for_stats()
    CategoryStats.objects.all().delete()
    written = CategoryStats.objects.bulk_create(
        CategoryStats(category_id=category_id, shard=shard, **sums)
        for (category_id, shard), sums in _fresh_category_stats().items()
    )
    caching.forget_on_commit()  # the stats the old rows fed
    return len(written)


# Deleting a user cascades to their installations and reviews without passing through the
# services above, so the agents they touched are recounted in the same transaction.
def note_agents_of_deleted_user(sender, instance, **kwargs):
    installed = Installation.objects.filter(user=instance).values_list("agent_id", flat=True)
    reviewed = Review.objects.filter(user=instance).values_list("agent_id", flat=True)
    instance._aios_touched_agents = set(installed) | set(reviewed)


def recount_agents_of_deleted_user(sender, instance, **kwargs):
    touched = getattr(instance, "_aios_touched_agents", None)
    if touched:
        recount_agents(touched)
