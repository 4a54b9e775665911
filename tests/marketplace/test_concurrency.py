"""Counters stay exact when many requests write at once (real PostgreSQL, real threads)."""

import contextlib
import random
import threading

import pytest
from django.db import close_old_connections, connection

from marketplace import services
from marketplace.models import Agent, Installation, Review
from tests.factories import AgentFactory, UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _run_in_threads(jobs, workers=16):
    """Run callables on `workers` threads, each with its own connection; collect exceptions."""
    errors, lock = [], threading.Lock()
    queue = list(jobs)
    barrier = threading.Barrier(workers)

    def worker():
        try:
            barrier.wait()
            while True:
                with lock:
                    if not queue:
                        return
                    job = queue.pop()
                try:
                    job()
                except Exception as exc:  # collected and asserted below
                    with lock:
                        errors.append(exc)
        finally:
            connection.close()
            close_old_connections()

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return errors


def test_parallel_installs_and_uninstalls_keep_install_count_exact():
    agents = AgentFactory.create_batch(3)
    users = UserFactory.create_batch(20)
    rng = random.Random(7)
    jobs = []
    for _ in range(300):
        user, agent = rng.choice(users), rng.choice(agents)
        op = services.install_agent if rng.random() < 0.6 else services.uninstall_agent
        jobs.append(lambda op=op, user=user, agent=agent: op(user=user, agent=agent))

    assert _run_in_threads(jobs) == []
    for agent in agents:
        stored = Agent.objects.get(pk=agent.pk).install_count
        assert stored == Installation.objects.filter(agent=agent).count()
    assert services.find_counter_drift() == []


def review_job(rng, user, agent, rating, *, hide_share=0.0):
    """Review the agent; when already reviewed, delete (30 %), flip hidden (`hide_share`) or
    re-rate the review, drawing once from `rng`."""

    def job():
        try:
            services.create_review(user=user, agent=agent, rating=rating)
        except services.ReviewAlreadyExists:
            review = Review.objects.filter(user=user, agent=agent).first()
            if review is None:
                return
            # A concurrent job may have deleted it: the API answers 404 there.
            with contextlib.suppress(Review.DoesNotExist):
                roll = rng.random()
                if roll < 0.3:
                    services.delete_review(review=review)
                elif roll < 0.3 + hide_share:
                    services.set_review_hidden(review=review, hidden=not review.is_hidden)
                else:
                    services.update_review(review=review, rating=rating)

    return job


def test_the_same_install_racing_itself_counts_once():
    agent, user = AgentFactory(), UserFactory()
    results = []
    jobs = [lambda: results.append(services.install_agent(user=user, agent=agent)[1])] * 32
    assert _run_in_threads(jobs) == []
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
    assert _run_in_threads(jobs) == []
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

    assert _run_in_threads([job] * 16) == []
    assert outcomes.count("created") == 1
    assert outcomes.count("conflict") == 15
    assert Agent.objects.get(pk=agent.pk).rating_count == 1
