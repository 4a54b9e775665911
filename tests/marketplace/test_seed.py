import hashlib
import statistics
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Exists, F, OuterRef, Q
from rest_framework.authtoken.models import Token

from aios import response_cache
from knowledge.models import KnowledgeEntry
from marketplace import caching
from marketplace.demo.plan import (
    ADMIN_PASSWORD,
    DEMO_EMAIL_DOMAIN,
    DEMO_PASSWORD,
    SMALL,
    shape_for,
)
from marketplace.models import Agent, Category, Installation, Publisher, Review
from marketplace.services import find_counter_drift
from tests.factories import AgentFactory, KnowledgeEntryFactory, UserFactory

User = get_user_model()
pytestmark = pytest.mark.django_db


def seed(*args) -> str:
    out = StringIO()
    call_command("seed_demo", "--no-progress", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.fixture
def seeded():
    return seed("--scale", "small")


# How a row is named across two seedings, whose ids differ.
NATURAL_KEY = {User: "username", Category: "slug", Publisher: "slug", Agent: "slug"}
# Not the password hash: make_password salts it afresh on every run.
LEFT_OUT = {"password"}


def seeded_columns(model) -> list[str]:
    """Every column of `model` but its id, a foreign key by the natural key of the row named."""
    return [
        f"{field.name}__{NATURAL_KEY[field.related_model]}" if field.is_relation else field.name
        for field in model._meta.concrete_fields
        if not field.primary_key and field.name not in LEFT_OUT
    ]


def digest() -> str:
    """A hash over every seeded row, each column of each model (ids left out)."""
    h = hashlib.sha256()
    demo_users = User.objects.filter(email__endswith=DEMO_EMAIL_DOMAIN)
    for queryset in (
        demo_users,
        *(m.objects.all() for m in (Category, Publisher, Agent, Installation, Review)),
        KnowledgeEntry.objects.all(),
    ):
        columns = seeded_columns(queryset.model)
        for row in queryset.order_by(*columns).values_list(*columns).iterator():
            h.update(repr(row).encode())
    return h.hexdigest()


# --- Shape ----------------------------------------------------------------------------------


def test_small_scale_has_the_documented_row_counts(seeded):
    assert Category.objects.count() == 20
    assert Publisher.objects.count() == SMALL.publishers
    assert Agent.objects.count() == SMALL.agents
    assert User.objects.count() == SMALL.users  # admin, demo and the generated users
    assert Installation.objects.count() == SMALL.installations
    assert Review.objects.count() == SMALL.reviews
    assert KnowledgeEntry.objects.count() == SMALL.knowledge
    assert "Seeded in" in seeded
    assert "installations" in seeded  # the per-table timing summary


def test_seeded_counters_match_the_rows(seeded):
    assert find_counter_drift() == []
    assert Agent.objects.filter(install_count__gt=0).exists()
    assert Agent.objects.filter(rating_count__gt=0, rating_average__gt=0).exists()


def test_popularity_is_skewed_towards_a_few_agents(seeded):
    installs = sorted(Agent.objects.values_list("install_count", flat=True), reverse=True)
    reviews = sorted(Agent.objects.values_list("rating_count", flat=True), reverse=True)
    top = len(installs) // 10
    assert sum(installs[:top]) > 0.5 * sum(installs)
    assert sum(reviews[:top]) > 0.5 * sum(reviews)
    assert installs[-1] < installs[0] / 20


def test_ratings_vary_by_agent_and_reviews_come_from_installers(seeded):
    averages = list(
        Agent.objects.filter(rating_count__gte=10).values_list("rating_average", flat=True)
    )
    assert len(averages) >= 10
    assert statistics.pstdev(averages) > 0.2
    assert max(averages) - min(averages) > 1.0
    installed = Installation.objects.filter(agent=OuterRef("agent"), user=OuterRef("user"))
    assert not Review.objects.exclude(Exists(installed)).exists()
    assert Review.objects.filter(is_hidden=True).exists()  # moderated reviews, not counted


def test_timestamps_follow_each_other(seeded):
    assert not Installation.objects.filter(installed_at__lt=F("agent__created_at")).exists()
    assert not Installation.objects.filter(installed_at__lt=F("user__date_joined")).exists()
    assert not KnowledgeEntry.objects.filter(created_at__lt=F("user__date_joined")).exists()
    assert not KnowledgeEntry.objects.filter(updated_at__lt=F("created_at")).exists()
    assert not Agent.objects.filter(published_at__lt=F("created_at")).exists()
    installed_later = Installation.objects.filter(
        agent=OuterRef("agent"), user=OuterRef("user"), installed_at__gt=OuterRef("created_at")
    )
    assert not Review.objects.filter(Exists(installed_later)).exists()
    years = Agent.objects.order_by("created_at").values_list("created_at", flat=True)
    assert (years.last() - years.first()).days > 365


def test_agents_are_varied_searchable_and_unique(seeded):
    assert Agent.objects.values("name").distinct().count() == SMALL.agents
    assert (
        Agent.objects.filter(
            Q(name__icontains="translat") | Q(tagline__icontains="translat")
        ).count()
        >= 3
    )
    assert Agent.objects.filter(description__contains="## What it does").count() == SMALL.agents
    assert 1 <= Agent.objects.filter(is_active=False).count() <= 0.1 * SMALL.agents
    assert Agent.objects.filter(is_featured=True, is_active=True).exists()
    assert not Agent.objects.filter(is_featured=True, is_active=False).exists()
    assert Publisher.objects.filter(verified=True).exists()
    assert Publisher.objects.filter(verified=False).exists()
    agent = Agent.objects.order_by("id").first()
    assert agent.tags and all(tag == tag.lower() and " " not in tag for tag in agent.tags)
    assert ".example." in agent.homepage_url
    per_category = Agent.objects.values("category").annotate(n=Count("id"))
    assert len(per_category) == 20


def test_knowledge_entries_cover_every_content_type(seeded):
    types = set(KnowledgeEntry.objects.values_list("content_type", flat=True))
    assert types == set(KnowledgeEntry.ContentType.values)
    links = KnowledgeEntry.objects.filter(content_type="link")
    assert not links.filter(source_url="").exists()
    assert KnowledgeEntry.objects.filter(agent__isnull=False).exists()
    assert KnowledgeEntry.objects.filter(agent__isnull=True).exists()
    assert KnowledgeEntry.objects.filter(content_type="snippet", body__contains="```").exists()


def test_demo_accounts_log_in_and_the_demo_user_has_activity(seeded):
    admin = User.objects.get(username="admin")
    assert admin.is_staff and admin.is_superuser
    assert admin.check_password(ADMIN_PASSWORD)
    demo = User.objects.get(username="demo")
    assert demo.check_password(DEMO_PASSWORD)
    assert User.objects.get(username="user000001").check_password(DEMO_PASSWORD)
    assert demo.installations.count() >= 10
    assert demo.reviews.filter(is_hidden=False).count() >= 5
    demo_types = set(demo.knowledge_entries.values_list("content_type", flat=True))
    assert demo_types == set(KnowledgeEntry.ContentType.values)
    generated = User.objects.exclude(username="admin")
    assert generated.values("password").distinct().count() == 1  # one shared hash
    assert "aios-demo" in seeded and "aios-admin" in seeded


# --- Determinism ----------------------------------------------------------------------------


def test_the_same_scale_and_seed_give_identical_rows(seeded):
    first = digest()
    seed("--scale", "small", "--replace")
    assert digest() == first
    seed("--scale", "small", "--replace", "--seed", "2")
    assert digest() != first


# --- Existing data --------------------------------------------------------------------------


def test_refuses_a_database_that_has_agents():
    AgentFactory()
    with pytest.raises(CommandError, match="--replace"):
        seed("--scale", "small")
    assert Agent.objects.count() == 1
    assert not User.objects.filter(username="demo").exists()


def test_skip_if_present_leaves_existing_data_alone(seeded):
    before = (Agent.objects.count(), User.objects.count(), Installation.objects.count())
    out = seed("--scale", "small", "--skip-if-present")
    assert "nothing to seed" in out
    assert (Agent.objects.count(), User.objects.count(), Installation.objects.count()) == before


def test_replace_deletes_demo_data_and_keeps_real_users(seeded):
    real = UserFactory(username="alice")
    KnowledgeEntryFactory(user=real)
    Token.objects.create(user=User.objects.get(username="demo"))  # a row pointing at a demo user
    seed("--scale", "small", "--replace")
    assert User.objects.filter(username="alice").exists()
    assert User.objects.count() == SMALL.users + 1
    assert Agent.objects.count() == SMALL.agents
    assert KnowledgeEntry.objects.count() == SMALL.knowledge  # alice's entry went too
    assert not Token.objects.exists()
    assert find_counter_drift() == []


def test_an_existing_admin_account_is_left_alone():
    real_admin = UserFactory(username="admin", email="root@company.test", is_staff=True)
    seed("--scale", "small")
    real_admin.refresh_from_db()
    assert real_admin.email == "root@company.test"
    assert not real_admin.check_password(ADMIN_PASSWORD)
    assert User.objects.filter(username="demo").exists()


def test_new_rows_get_fresh_ids_after_a_seed(seeded):
    # The seed writes explicit ids; the sequences must have moved past them.
    user = UserFactory(username="newcomer")
    agent = AgentFactory()
    assert user.pk > User.objects.exclude(pk=user.pk).order_by("-pk").first().pk
    assert agent.pk > Agent.objects.exclude(pk=agent.pk).order_by("-pk").first().pk


def test_seeding_retires_every_cached_key():
    before = response_cache.namespaced_key(caching.LISTS_NS, "page")
    seed("--scale", "small")
    assert response_cache.namespaced_key(caching.LISTS_NS, "page") != before


# --- Scales ---------------------------------------------------------------------------------


def test_an_integer_scale_seeds_its_shape():
    seed("--scale", "20")
    shape = shape_for("20")
    assert Agent.objects.count() == shape.agents
    assert Installation.objects.count() == shape.installations
    assert Review.objects.count() == shape.reviews
    assert find_counter_drift() == []


@pytest.mark.postgres
def test_the_load_leaves_every_index_and_constraint_in_place():
    # The PostgreSQL load drops secondary indexes and foreign keys and rebuilds them.
    def schema() -> set:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
            )
            indexes = set(cursor.fetchall())
            cursor.execute(
                "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
                "FROM pg_constraint WHERE connamespace = 'public'::regnamespace"
            )
            return indexes | set(cursor.fetchall())

    before = schema()
    assert any(name == "idx_installations_user_agent" for _, name, _ in before)
    seed("--scale", "small")
    assert schema() == before
    # The rebuilt foreign keys are enforced again.
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        Installation.objects.create(user_id=10**9, agent=Agent.objects.first())
