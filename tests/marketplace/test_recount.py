from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import F

from marketplace import services
from marketplace.models import Agent
from tests.factories import AgentFactory, UserFactory

pytestmark = pytest.mark.django_db


def recount(*args) -> str:
    out = StringIO()
    call_command("recount", *args, stdout=out)
    return out.getvalue()


def counters(agent) -> tuple:
    agent.refresh_from_db()
    return (
        agent.install_count,
        agent.rating_count,
        round(agent.rating_average, 9),
        *agent.rating_distribution.values(),
    )


@pytest.fixture
def agents():
    """Three agents whose counters were kept exact by the services."""
    a, b, c = (AgentFactory(slug=slug, name=slug) for slug in ("alpha", "beta", "gamma"))
    users = [UserFactory(username=f"u{i}") for i in range(4)]
    for agent, ratings in ((a, (5, 4, 4)), (b, (2, 3, 5, 1)), (c, ())):
        for user, rating in zip(users, ratings, strict=False):
            services.install_agent(user=user, agent=agent)
            services.create_review(user=user, agent=agent, rating=rating)
    services.install_agent(user=users[3], agent=c)
    return a, b, c


def break_counters(a, b, c):
    Agent.objects.filter(pk=a.pk).update(install_count=F("install_count") + 5)
    Agent.objects.filter(pk=b.pk).update(ratings_3=0, rating_count=9, rating_average=4.5)
    Agent.objects.filter(pk=c.pk).update(install_count=0)


def test_a_clean_database_reports_no_drift(agents):
    out = recount()
    assert "Checked 3 agents: 0 drifted" in out
    assert "Every counter matches" in out


def test_recount_reports_and_repairs_injected_drift(agents):
    a, b, c = agents
    exact = [counters(agent) for agent in agents]
    break_counters(a, b, c)

    out = recount()

    assert f"alpha (id {a.pk}): install_count 8 -> 3" in out
    assert (
        f"beta (id {b.pk}): ratings_3 0 -> 1, rating_count 9 -> 4, rating_average 4.5 -> 2.75"
        in out
    )
    assert f"gamma (id {c.pk}): install_count 0 -> 1" in out
    assert "3 drifted (5 counters)" in out
    assert "Repaired 3 agents" in out
    assert [counters(agent) for agent in agents] == exact
    assert services.find_counter_drift() == []


def test_dry_run_reports_but_changes_nothing(agents):
    a, b, c = agents
    break_counters(a, b, c)
    broken = [counters(agent) for agent in agents]

    out = recount("--dry-run")

    assert "install_count 8 -> 3" in out
    assert "Dry run: nothing changed" in out
    assert [counters(agent) for agent in agents] == broken
    assert len(services.find_counter_drift()) == 3


def test_agent_option_checks_and_repairs_only_those_agents(agents):
    a, b, c = agents
    break_counters(a, b, c)

    out = recount("--agent", "alpha", "--agent", "gamma")

    assert "alpha" in out and "gamma" in out and "beta" not in out
    assert "Checked 2 agents: 2 drifted" in out
    assert [d["slug"] for d in services.find_counter_drift()] == ["beta"]


def test_an_unknown_slug_is_an_error(agents):
    with pytest.raises(CommandError, match="no-such-agent"):
        recount("--agent", "alpha", "no-such-agent")


def test_hidden_reviews_stop_counting(agents):
    a, _, _ = agents
    # A moderator hid a review with update(), bypassing the service: the counters drift.
    a.reviews.filter(rating=5).update(is_hidden=True)

    out = recount()

    expected = "ratings_5 1 -> 0, rating_count 3 -> 2, rating_average 4.333333333 -> 4"
    assert f"alpha (id {a.pk}): {expected}" in out
    a.refresh_from_db()
    assert (a.rating_count, a.rating_average, a.ratings_5) == (2, 4.0, 0)


def test_recount_repairs_a_seeded_database():
    call_command("seed_demo", "--scale", "small", "--no-progress", stdout=StringIO())
    top = Agent.objects.order_by("-install_count").first()
    Agent.objects.filter(pk=top.pk).update(install_count=F("install_count") - 1)

    out = recount()

    assert f"{top.slug} (id {top.pk}): install_count" in out
    assert "1 drifted (1 counters)" in out
    assert services.find_counter_drift() == []
