import io

import pytest
from django.contrib.admin.sites import site
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from knowledge.models import KnowledgeEntry
from marketplace import icons, services
from marketplace.models import Agent, Category, Installation, Publisher, Review
from tests.factories import AgentFactory, KnowledgeEntryFactory, UserFactory
from tests.helpers.admin_forms import agent_change_form

pytestmark = pytest.mark.django_db

MODELS = (Category, Publisher, Agent, Installation, Review, KnowledgeEntry)


def _changelist(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def _rows(n: int) -> None:
    """n agents, each with an installation, a review and a knowledge entry."""
    for _ in range(n):
        agent = AgentFactory()
        user = UserFactory()
        services.install_agent(user=user, agent=agent)
        services.create_review(user=user, agent=agent, rating=4)
        KnowledgeEntryFactory(user=user, agent=agent)


def test_every_model_is_registered():
    for model in MODELS:
        assert site.is_registered(model), model


def test_admin_is_for_staff_only(client, user):
    client.force_login(user)
    response = client.get(_changelist(Agent))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_changelist_query_count_does_not_grow_with_rows(client, staff_user, model):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(staff_user)
    _rows(3)
    with CaptureQueriesContext(connection) as few:
        assert client.get(_changelist(model)).status_code == 200
    _rows(12)
    with CaptureQueriesContext(connection) as many:
        assert client.get(_changelist(model)).status_code == 200
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_changelist_search_and_change_pages_work(client, staff_user, model):
    _rows(2)
    client.force_login(staff_user)
    assert client.get(_changelist(model), {"q": "a"}).status_code == 200
    obj = model.objects.first()
    change = reverse(
        f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[obj.pk]
    )
    assert client.get(change).status_code == 200


def test_agent_changelist_query_count_is_pinned(client, staff_user, django_assert_num_queries):
    _rows(5)
    client.force_login(staff_user)
    # session, user, category filter, COUNT, one page of rows, date hierarchy (range + days)
    with django_assert_num_queries(7):
        client.get(_changelist(Agent))


def _action(client, model, action, ids):
    return client.post(
        _changelist(model),
        {"action": action, "_selected_action": [str(i) for i in ids]},
        follow=True,
    )


def test_feature_unfeature_activate_deactivate_actions(client, staff_user):
    a, b = AgentFactory(), AgentFactory()
    client.force_login(staff_user)

    response = _action(client, Agent, "feature", [a.pk, b.pk])
    assert "2 agent(s) featured." in response.content.decode()
    assert set(Agent.objects.filter(is_featured=True).values_list("pk", flat=True)) == {a.pk, b.pk}

    _action(client, Agent, "unfeature", [a.pk])
    _action(client, Agent, "deactivate", [b.pk])
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.is_featured, b.is_featured, b.is_active) == (False, True, False)
    _action(client, Agent, "activate", [b.pk])
    b.refresh_from_db()
    assert b.is_active


def test_hiding_a_review_updates_the_agent_rating(client, staff_user, agent):
    good = services.create_review(user=UserFactory(), agent=agent, rating=5)
    services.create_review(user=UserFactory(), agent=agent, rating=1)
    client.force_login(staff_user)

    _action(client, Review, "hide", [good.pk])
    agent.refresh_from_db()
    assert (agent.rating_count, agent.rating_average) == (1, 1.0)

    _action(client, Review, "unhide", [good.pk])
    agent.refresh_from_db()
    assert (agent.rating_count, agent.rating_average) == (2, 3.0)


def test_deleting_reviews_and_installations_in_the_admin_keeps_counters(client, staff_user, agent):
    user = UserFactory()
    services.install_agent(user=user, agent=agent)
    review = services.create_review(user=user, agent=agent, rating=4)
    client.force_login(staff_user)

    client.post(
        _changelist(Review),
        {"action": "delete_selected", "_selected_action": [review.pk], "post": "yes"},
    )
    installation = Installation.objects.get()
    client.post(
        _changelist(Installation),
        {"action": "delete_selected", "_selected_action": [installation.pk], "post": "yes"},
    )
    agent.refresh_from_db()
    assert not Review.objects.exists() and not Installation.objects.exists()
    assert (agent.rating_count, agent.install_count) == (0, 0)
    assert services.find_counter_drift([agent.pk]) == []


def test_counters_and_review_ratings_are_read_only(client, staff_user, agent):
    review = services.create_review(user=UserFactory(), agent=agent, rating=2)
    client.force_login(staff_user)
    html = client.get(reverse("admin:marketplace_agent_change", args=[agent.pk])).content.decode()
    assert 'name="install_count"' not in html and 'name="rating_average"' not in html
    html = client.get(reverse("admin:marketplace_review_change", args=[review.pk])).content.decode()
    assert 'name="rating"' not in html
    assert client.get(reverse("admin:marketplace_installation_add")).status_code == 403


def test_uploaded_icon_is_stored_as_webp_sizes(client, staff_user, agent, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    buf = io.BytesIO()
    Image.new("RGB", (300, 200), "#336699").save(buf, "PNG")
    upload = SimpleUploadedFile("logo.png", buf.getvalue(), content_type="image/png")
    client.force_login(staff_user)
    url = reverse("admin:marketplace_agent_change", args=[agent.pk])
    data = agent_change_form(agent, icon=upload, is_active="on")
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    agent.refresh_from_db()
    assert agent.icon.name.startswith("icons/up/") and agent.icon.name.endswith(".webp")
    for size in icons.SIZES:
        with Image.open(tmp_path / icons.variant_name(agent.icon.name, size)) as image:
            assert (image.format, image.size) == ("WEBP", (size, size))


BIG_TABLES = (Installation, Review, KnowledgeEntry)


def _counts_of(table: str, queries) -> list[str]:
    return [q["sql"] for q in queries if "COUNT(" in q["sql"].upper() and f'"{table}"' in q["sql"]]


def _changelist_queries(client, model, **params):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        response = client.get(_changelist(model), params)
    assert response.status_code == 200
    return response, captured.captured_queries


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("model", BIG_TABLES, ids=lambda m: m.__name__)
def test_big_changelists_show_the_estimate_above_the_threshold_without_counting(
    client, staff_user, settings, model
):
    from django.db import connection

    _rows(12)
    table = model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f'ANALYZE "{table}"')  # what autovacuum does on a real table
    client.force_login(staff_user)
    settings.ADMIN_ESTIMATED_COUNT_ABOVE = 5
    response, queries = _changelist_queries(client, model)
    assert _counts_of(table, queries) == []
    assert any("reltuples" in q["sql"] for q in queries)
    assert response.context["cl"].result_count == 12  # freshly analysed: exact here
    # Below the threshold, or filtered by a search: the exact COUNT(*).
    settings.ADMIN_ESTIMATED_COUNT_ABOVE = 1000
    assert len(_counts_of(table, _changelist_queries(client, model)[1])) == 1
    settings.ADMIN_ESTIMATED_COUNT_ABOVE = 5
    assert len(_counts_of(table, _changelist_queries(client, model, q="x")[1])) == 1


@pytest.mark.django_db
@pytest.mark.parametrize("model", BIG_TABLES, ids=lambda m: m.__name__)
def test_big_changelists_count_exactly_on_sqlite(client, staff_user, settings, model):
    from django.db import connection

    if connection.vendor == "postgresql":
        pytest.skip("the estimate has its own test on PostgreSQL")
    _rows(3)
    client.force_login(staff_user)
    settings.ADMIN_ESTIMATED_COUNT_ABOVE = 0
    response, queries = _changelist_queries(client, model)
    assert len(_counts_of(model._meta.db_table, queries)) == 1
    assert response.context["cl"].result_count == 3
