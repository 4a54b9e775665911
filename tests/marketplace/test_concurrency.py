"""Counters stay exact when many requests write at once (real PostgreSQL, real threads)."""

import random

import pytest

from marketplace import services
from marketplace.models import Agent, Installation, Review
from tests.factories import AgentFactory, UserFactory
from tests.helpers.threads import review_job, run_in_threads

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_parallel_installs_and_uninstalls_keep_install_count_exact():
    agents = AgentFactory.create_batch(3)
    users = UserFactory.create_batch(20)
    rng = random.Random(7)
    jobs = []
    for _ in range(300):
        user, agent = rng.choice(users), rng.choice(agents)
        op = services.install_agent if rng.random() < 0.6 else services.uninstall_agent
        jobs.append(lambda op=op, user=user, agent=agent: op(user=user, agent=agent))

    assert run_in_threads(jobs) == []
    for agent in agents:
        stored = Agent.objects.get(pk=agent.pk).install_count
        assert stored == Installation.objects.filter(agent=agent).count()
    assert services.find_counter_drift() == []


def test_the_same_install_racing_itself_counts_once():
    agent, user = AgentFactory(), UserFactory()
    results = []
    jobs = [lambda: results.append(services.install_agent(user=user, agent=agent)[1])] * 32
    assert run_in_threads(jobs) == []
    assert results.count(True) == 1
    assert Agent.objects.get(pk=agent.pk).install_count == 1


def test_parallel_reviews_edits_and_deletes_keep_ratings_exact():
    agents = AgentFactory.create_batch(2)
    users = UserFactory.create_batch(25)
    rng = random.Random(11)

    jobs = [
        review_job(rng, rng.choice(users), rng.choice(agents), rng.randint(1, 5))
        for _ in range(300)
    ]
    assert run_in_threads(jobs) == []
    assert services.find_counter_drift() == []
    for agent in agents:
        fresh = Agent.objects.get(pk=agent.pk)
        assert fresh.rating_count == Review.objects.filter(agent=agent).count()


def test_one_user_posting_the_same_review_twice_at_once_gets_one_review():
    agent, user = AgentFactory(), UserFactory()
    outcomes = []

    def job():
        try:
            services.create_review(user=user, agent=agent, rating=4)
            outcomes.append("created")
        except services.ReviewAlreadyExists:
            outcomes.append("conflict")

    assert run_in_threads([job] * 16) == []
    assert outcomes.count("created") == 1
    assert outcomes.count("conflict") == 15
    assert Agent.objects.get(pk=agent.pk).rating_count == 1
