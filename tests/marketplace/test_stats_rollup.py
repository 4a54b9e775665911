"""CategoryStats, the per-category rollup of the agent counters that the database triggers
keep: after every write path it equals an aggregate of the agent rows computed here, in
Python, and marketplace_stats() read from it equals the figures computed from the agents."""

import random
from collections import Counter
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.models import F, ProtectedError
from django.urls import reverse

from marketplace import services
from marketplace.models import RATINGS, STATS_SHARDS, Agent, Category, CategoryStats
from marketplace.stats import marketplace_stats
from tests.factories import AgentFactory, CategoryFactory, UserFactory
from tests.helpers.admin_forms import agent_change_form
from tests.helpers.threads import review_job, run_in_threads

pytestmark = pytest.mark.django_db

COLUMNS = services.STATS_COLUMNS


# --- Oracles ----------------------------------------------------------------------------------


def expected_rollup() -> dict:
    """(category id, shard) -> the sums the rollup must hold, from every agent row."""
    rows: dict = {}
    for a in Agent.objects.all():
        row = rows.setdefault((a.category_id, a.pk % STATS_SHARDS), Counter())
        row["agents"] += 1
        row["active_agents"] += a.is_active
        row["featured_agents"] += a.is_active and a.is_featured
        row["installs"] += a.install_count
        row["active_installs"] += a.install_count if a.is_active else 0
        row["reviews"] += a.rating_count
        for r in RATINGS:
            row[f"ratings_{r}"] += getattr(a, f"ratings_{r}")
    return {key: {c: row[c] for c in COLUMNS} for key, row in rows.items()}


def stored_rollup() -> dict:
    """The rollup's rows, leaving out stripes that sum to nothing (all their agents left)."""
    stored = {}
    for row in CategoryStats.objects.all():
        sums = {c: getattr(row, c) for c in COLUMNS}
        if any(sums.values()):
            stored[(row.category_id, row.shard)] = sums
    return stored


def assert_rollup_exact() -> None:
    assert stored_rollup() == expected_rollup()
    assert services.find_stats_drift() == []


def expected_stats() -> dict:
    """What marketplace_stats() reported when it summed the agent rows themselves."""
    agents = list(Agent.objects.all())
    active = [a for a in agents if a.is_active]
    distribution = {str(r): sum(getattr(a, f"ratings_{r}") for a in agents) for r in RATINGS}
    counted = sum(distribution.values())
    weighted = sum(r * distribution[str(r)] for r in RATINGS)
    top = sorted(active, key=lambda a: (a.install_count, a.pk), reverse=True)[:5]
    return {
        "total_agents": len(agents),
        "active_agents": len(active),
        "featured_agents": sum(a.is_featured for a in active),
        "total_installations": sum(a.install_count for a in agents),
        "total_reviews": sum(a.rating_count for a in agents),
        "average_rating": round(weighted / counted, 4) if counted else None,
        "rating_distribution": distribution,
        "categories": [
            {
                "slug": c.slug,
                "name": c.name,
                "agent_count": sum(a.category_id == c.pk for a in active),
                "install_count": sum(a.install_count for a in active if a.category_id == c.pk),
            }
            for c in Category.objects.order_by("position", "name")
        ],
        "top_agents": [
            {
                "id": a.pk,
                "slug": a.slug,
                "name": a.name,
                "category": {"slug": a.category.slug, "name": a.category.name},
                "rating_average": a.rating_average,
                "rating_count": a.rating_count,
                "install_count": a.install_count,
            }
            for a in top
        ],
    }


# --- Fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def shelf():
    """Two categories, agents in several shards (and two in one shard), installs and reviews
    through the services, one inactive and one featured agent."""
    writing, code = CategoryFactory(name="Writing"), CategoryFactory(name="Code")
    agents = [AgentFactory(category=writing) for _ in range(5)]
    agents += [AgentFactory(category=code) for _ in range(3)]
    # Same category and shard as agents[0]: two agents sharing one rollup row.
    agents.append(AgentFactory(id=agents[0].pk + STATS_SHARDS * 10, category=writing))
    users = UserFactory.create_batch(4)
    for i, agent in enumerate(agents):
        for user in users[: i % 4 + 1]:
            services.install_agent(user=user, agent=agent)
        for user, rating in zip(users, (5, 3, 1, 4)[: i % 3 + 1], strict=False):
            services.create_review(user=user, agent=agent, rating=rating)
    services.set_agents_flag(agent_ids=[agents[1].pk], is_featured=True)
    services.set_agents_flag(agent_ids=[agents[6].pk], is_active=False)
    for agent in agents:
        agent.refresh_from_db()
    return {"writing": writing, "code": code, "agents": agents, "users": users}


# --- The rollup follows every write path ------------------------------------------------------


def test_the_fixture_starts_exact_and_fills_several_shards(shelf):
    assert_rollup_exact()
    writing = shelf["writing"]
    assert CategoryStats.objects.filter(category=writing).count() == 5  # six agents, 5 stripes
    assert CategoryStats.objects.get(category=writing, shard=shelf["agents"][0].pk % 16).agents == 2


def test_install_and_uninstall(shelf):
    agent, user = shelf["agents"][0], UserFactory()
    services.install_agent(user=user, agent=agent)
    assert_rollup_exact()
    before = CategoryStats.objects.get(category=agent.category, shard=agent.pk % STATS_SHARDS)
    services.uninstall_agent(user=user, agent=agent)
    assert_rollup_exact()
    after = CategoryStats.objects.get(pk=before.pk)
    assert (after.installs, after.active_installs) == (
        before.installs - 1,
        before.active_installs - 1,
    )


def test_installing_an_inactive_agent_is_refused_and_changes_nothing(shelf):
    before = stored_rollup()
    with pytest.raises(services.AgentUnavailable):
        services.install_agent(user=UserFactory(), agent=shelf["agents"][6])
    assert stored_rollup() == before


def test_review_create_edit_delete_hide_unhide(shelf):
    agent, user = shelf["agents"][2], UserFactory()
    review = services.create_review(user=user, agent=agent, rating=2)
    assert_rollup_exact()
    services.update_review(review=review, rating=5)
    assert_rollup_exact()
    services.update_review(review=review, title="Only the title")
    assert_rollup_exact()
    services.set_review_hidden(review=review, hidden=True)
    assert_rollup_exact()
    services.set_review_hidden(review=review, hidden=False)
    assert_rollup_exact()
    services.delete_review(review=review)
    assert_rollup_exact()


def test_flags_through_the_service(shelf):
    ids = [a.pk for a in shelf["agents"][:4]]
    services.set_agents_flag(agent_ids=ids, is_featured=True)
    assert_rollup_exact()
    services.set_agents_flag(agent_ids=ids[:2], is_active=False)
    assert_rollup_exact()
    services.set_agents_flag(agent_ids=ids, is_active=True, is_featured=False)
    assert_rollup_exact()


@pytest.mark.parametrize("action", ["feature", "unfeature", "deactivate", "activate"])
def test_admin_actions(client, staff_user, shelf, action):
    client.force_login(staff_user)
    ids = [a.pk for a in shelf["agents"][:3]] + [shelf["agents"][6].pk]
    response = client.post(
        reverse("admin:marketplace_agent_changelist"),
        {"action": action, "_selected_action": [str(pk) for pk in ids]},
    )
    assert response.status_code == 302
    assert_rollup_exact()


def test_admin_change_form_moves_deactivates_and_features_an_agent(client, staff_user, shelf):
    agent, code = shelf["agents"][0], shelf["code"]
    client.force_login(staff_user)
    # is_active left out: unticked.
    data = agent_change_form(agent, category=code.pk, is_featured="on")
    response = client.post(reverse("admin:marketplace_agent_change", args=[agent.pk]), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    agent.refresh_from_db()
    assert (agent.category_id, agent.is_active, agent.is_featured) == (code.pk, False, True)
    assert_rollup_exact()


def test_admin_deletes_an_agent(client, staff_user, shelf):
    agent = shelf["agents"][3]
    client.force_login(staff_user)
    response = client.post(
        reverse("admin:marketplace_agent_delete", args=[agent.pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    assert not Agent.objects.filter(pk=agent.pk).exists()
    assert_rollup_exact()


def test_save_moves_an_agent_and_toggles_its_flags(shelf):
    agent = shelf["agents"][1]
    agent.category = shelf["code"]
    agent.save()
    assert_rollup_exact()
    agent.is_active = False
    agent.save()
    assert_rollup_exact()
    agent.is_active, agent.is_featured = True, False
    agent.save(update_fields=["is_active", "is_featured"])
    assert_rollup_exact()


def test_queryset_update_of_counters_categories_and_flags(shelf):
    writing, code = shelf["writing"], shelf["code"]
    Agent.objects.filter(category=writing).update(install_count=F("install_count") + 7)
    assert_rollup_exact()
    Agent.objects.filter(category=writing, ratings_5__gt=0).update(
        ratings_5=F("ratings_5") + 2, rating_count=F("rating_count") + 2
    )
    assert_rollup_exact()
    Agent.objects.filter(category=code).update(category=writing, is_featured=True)
    assert_rollup_exact()
    Agent.objects.update(is_active=False)
    assert_rollup_exact()


def test_an_update_that_changes_no_counted_column_leaves_the_rollup_alone(shelf):
    before = stored_rollup()
    Agent.objects.update(description="New words", tagline="Still useful")
    shelf["agents"][0].save()  # every column written, none changed
    assert stored_rollup() == before


@pytest.mark.postgres
def test_an_update_that_changes_no_counted_column_writes_no_rollup_row(shelf):
    # ctid moves with every new row version: no version means no write and no row lock.
    def versions():
        with connection.cursor() as cursor:
            cursor.execute("SELECT id, ctid::text FROM marketplace_category_stats ORDER BY id")
            return cursor.fetchall()

    before = versions()
    Agent.objects.update(description="New words")
    assert versions() == before
    Agent.objects.filter(pk=shelf["agents"][0].pk).update(install_count=F("install_count") + 1)
    assert versions() != before


def test_raw_sql_writes(shelf):
    agent = shelf["agents"][4]
    table = Agent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET install_count = install_count + 3, ratings_2 = ratings_2 + 1, "  # noqa: S608
            "rating_count = rating_count + 1 WHERE id = %s",
            [agent.pk],
        )
        assert_rollup_exact()
        # An agent without installation or review rows, so no foreign key is left dangling.
        loner = AgentFactory(category=shelf["code"], install_count=4, is_featured=True)
        assert_rollup_exact()
        cursor.execute(f"DELETE FROM {table} WHERE id = %s", [loner.pk])  # noqa: S608
    assert_rollup_exact()


def test_created_and_bulk_created_agents(shelf):
    AgentFactory(category=shelf["code"], install_count=12, ratings_4=3, rating_count=3)
    publisher = shelf["agents"][0].publisher
    Agent.objects.bulk_create(
        Agent(
            name=f"Bulk {i}",
            slug=f"bulk-{i}",
            tagline="Made in bulk",
            category=shelf["writing"],
            publisher=publisher,
            install_count=i,
            is_featured=i % 2 == 0,
            is_active=i != 3,
        )
        for i in range(20)
    )
    assert_rollup_exact()


def test_deleting_agents_with_their_installations_and_reviews(shelf):
    shelf["agents"][0].delete()
    assert_rollup_exact()
    Agent.objects.filter(category=shelf["code"]).delete()
    assert_rollup_exact()


def test_deleting_a_user_recounts_the_agents_and_the_rollup_follows(shelf):
    shelf["users"][0].delete()
    assert services.find_counter_drift() == []
    assert_rollup_exact()


def test_a_category_with_agents_cannot_be_deleted_and_an_emptied_one_can(shelf):
    code = shelf["code"]
    with pytest.raises(ProtectedError):
        code.delete()
    assert_rollup_exact()
    Agent.objects.filter(category=code).update(category=shelf["writing"])
    assert CategoryStats.objects.filter(category=code).exists()  # stripes summing to zero
    code.delete()
    assert not CategoryStats.objects.filter(category_id=code.pk).exists()
    assert_rollup_exact()
    assert [c["slug"] for c in marketplace_stats()["categories"]] == ["writing"]


# --- Stats read the rollup --------------------------------------------------------------------


def test_stats_equal_the_figures_of_the_agent_rows_in_two_queries(shelf, django_assert_num_queries):
    with django_assert_num_queries(2):  # the categories with their sums, the top agents
        stats = marketplace_stats()
    assert stats == expected_stats()
    assert list(stats) == list(expected_stats())  # the keys in the same order too


def test_stats_list_categories_in_menu_order_with_empty_ones(shelf):
    shelf["writing"].position, shelf["code"].position = 5, 1
    shelf["writing"].save()
    shelf["code"].save()
    CategoryFactory(name="Empty", position=3)
    stats = marketplace_stats()
    assert [c["slug"] for c in stats["categories"]] == ["code", "empty", "writing"]
    assert stats["categories"][1] == {
        "slug": "empty",
        "name": "Empty",
        "agent_count": 0,
        "install_count": 0,
    }
    assert stats == expected_stats()


def test_stats_of_a_seeded_database_equal_the_figures_of_its_agents():
    call_command("seed_demo", "--scale", "small", "--no-progress", stdout=StringIO())
    assert_rollup_exact()
    assert marketplace_stats() == expected_stats()
    # --replace empties the rollup with the agents (TRUNCATE fires no row trigger on
    # PostgreSQL), then the load fills it again.
    call_command("seed_demo", "--scale", "small", "--replace", "--no-progress", stdout=StringIO())
    assert_rollup_exact()
    assert CategoryStats.objects.filter(agents__gt=0).count() > 20


# --- recount ----------------------------------------------------------------------------------


def recount(*args) -> str:
    out = StringIO()
    call_command("recount", *args, stdout=out)
    return out.getvalue()


def test_recount_finds_nothing_on_an_exact_rollup(shelf):
    assert "Category stats match the agents." in recount()


def test_recount_reports_and_rebuilds_a_drifted_rollup(shelf):
    writing = shelf["writing"]
    shard = shelf["agents"][0].pk % STATS_SHARDS
    row = CategoryStats.objects.get(category=writing, shard=shard)
    CategoryStats.objects.filter(pk=row.pk).update(installs=F("installs") + 5, agents=0)
    CategoryStats.objects.filter(category=shelf["code"]).delete()

    out = recount()

    assert (
        f"category stats writing (shard {shard}): agents 0 -> 2, "
        f"installs {row.installs + 5} -> {row.installs}"
    ) in out
    assert "category stats code (shard" in out
    assert "Category stats: 4 rows drifted. Rebuilt them from the agents" in out
    assert_rollup_exact()


def test_recount_dry_run_reports_the_rollup_drift_and_changes_nothing(shelf):
    CategoryStats.objects.filter(category=shelf["code"]).update(reviews=F("reviews") - 1)
    broken = stored_rollup()

    out = recount("--dry-run")

    assert "Category stats: 3 rows drifted. Dry run: nothing changed." in out
    assert stored_rollup() == broken
    assert len(services.find_stats_drift()) == 3


def test_recount_of_agent_counters_moves_the_rollup_with_them(shelf):
    agent = shelf["agents"][0]
    # A raw write that bypassed the services: the counter and (through the trigger) the
    # rollup move together, away from the installation rows.
    Agent.objects.filter(pk=agent.pk).update(install_count=F("install_count") + 9)
    assert_rollup_exact()

    out = recount()

    assert f"(id {agent.pk}): install_count" in out
    assert "Category stats match the agents." in out
    assert_rollup_exact()
    assert services.find_counter_drift() == []


def test_recount_of_some_agents_leaves_the_rollup_unchecked(shelf):
    CategoryStats.objects.update(installs=0)
    out = recount("--agent", shelf["agents"][0].slug)
    assert "Category stats" not in out
    assert services.find_stats_drift()


def test_rebuild_writes_one_row_per_used_stripe(shelf):
    CategoryStats.objects.all().delete()
    assert services.rebuild_category_stats() == len(expected_rollup())
    assert_rollup_exact()


# --- The migration ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_migration_fills_the_rollup_from_the_agents_already_there():
    executor = MigrationExecutor(connection)
    executor.migrate([("marketplace", "0004_drop_redundant_indexes")])
    try:
        # No table and no triggers at 0004: these rows are written without either.
        writing, code = CategoryFactory(name="Writing"), CategoryFactory(name="Code")
        for i in range(40):
            AgentFactory(
                category=writing if i % 3 else code,
                install_count=i * 7,
                rating_count=i % 5,
                **{f"ratings_{i % 5 or 1}": i % 5},
                is_active=i % 7 != 0,
                is_featured=i % 4 == 0,
            )
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes("marketplace"))
    assert CategoryStats.objects.count() == len(expected_rollup()) > STATS_SHARDS
    assert_rollup_exact()
    # ... and the triggers it installed keep it so.
    Agent.objects.filter(category=code).update(is_active=True, install_count=1)
    Agent.objects.filter(install_count__gt=200).delete()
    assert_rollup_exact()


# --- Concurrency (real PostgreSQL, real threads) ----------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_writes_in_one_category_keep_the_rollup_exact_without_deadlocks():
    category = CategoryFactory(name="Busy")
    agents = AgentFactory.create_batch(24, category=category)  # every stripe, some shared
    users = UserFactory.create_batch(30)
    rng = random.Random(5)

    def install_job(user, agent):
        op = services.install_agent if rng.random() < 0.7 else services.uninstall_agent
        return lambda: op(user=user, agent=agent)

    def flag_job(ids, featured):
        # One UPDATE over many agents: a multi-row statement beside the single-row ones.
        return lambda: services.set_agents_flag(agent_ids=ids, is_featured=featured)

    jobs = []
    for _ in range(400):
        roll = rng.random()
        if roll < 0.5:
            jobs.append(install_job(rng.choice(users), rng.choice(agents)))
        elif roll < 0.9:
            user, agent, rating = rng.choice(users), rng.choice(agents), rng.randint(1, 5)
            jobs.append(review_job(rng, user, agent, rating, hide_share=0.2))
        else:
            ids = [a.pk for a in rng.sample(agents, 8)]
            jobs.append(flag_job(ids, rng.random() < 0.5))

    assert run_in_threads(jobs) == []
    assert services.find_counter_drift() == []
    assert_rollup_exact()
    assert Agent.objects.filter(install_count__gt=0).count() > 12
