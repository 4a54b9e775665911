"""Writes through marketplace.services keep the denormalised counters exact."""

import pytest

from marketplace import services
from marketplace.models import Agent, Installation, Review
from tests.factories import AgentFactory, ReviewFactory, UserFactory

pytestmark = pytest.mark.django_db


def _fresh(agent):
    return Agent.objects.get(pk=agent.pk)


def test_install_counts_once_and_is_idempotent(user, agent):
    first, created = services.install_agent(user=user, agent=agent)
    again, created_again = services.install_agent(user=user, agent=agent)
    assert created and not created_again
    assert first.pk == again.pk
    assert _fresh(agent).install_count == 1


def test_uninstall_decrements_once(user, agent):
    services.install_agent(user=user, agent=agent)
    assert services.uninstall_agent(user=user, agent=agent) is True
    assert services.uninstall_agent(user=user, agent=agent) is False
    assert _fresh(agent).install_count == 0
    assert not Installation.objects.exists()


def test_inactive_agents_cannot_be_installed_or_reviewed(user):
    hidden = AgentFactory(is_active=False)
    with pytest.raises(services.AgentUnavailable):
        services.install_agent(user=user, agent=hidden)
    with pytest.raises(services.AgentUnavailable):
        services.create_review(user=user, agent=hidden, rating=5)
    assert _fresh(hidden).install_count == 0


def test_reviews_keep_histogram_count_and_average(agent):
    for rating in (5, 4, 4, 1):
        services.create_review(user=UserFactory(), agent=agent, rating=rating)
    fresh = _fresh(agent)
    assert fresh.rating_count == 4
    assert fresh.rating_distribution == {1: 1, 2: 0, 3: 0, 4: 2, 5: 1}
    assert fresh.rating_average == pytest.approx(3.5)


def test_second_review_by_the_same_user_is_refused(user, agent):
    services.create_review(user=user, agent=agent, rating=5)
    with pytest.raises(services.ReviewAlreadyExists):
        services.create_review(user=user, agent=agent, rating=1)
    fresh = _fresh(agent)
    assert (fresh.rating_count, fresh.rating_average) == (1, 5.0)


@pytest.mark.parametrize("rating", [0, 6, "5", 4.5, None, True])
def test_invalid_ratings_are_refused_before_any_write(user, agent, rating):
    with pytest.raises(services.InvalidRating):
        services.create_review(user=user, agent=agent, rating=rating)
    assert not Review.objects.exists()


def test_changing_a_rating_moves_it_in_the_histogram(user, agent):
    review = services.create_review(user=user, agent=agent, rating=2)
    services.create_review(user=UserFactory(), agent=agent, rating=4)
    services.update_review(review=review, rating=5, title="Better now")
    fresh = _fresh(agent)
    assert fresh.rating_distribution == {1: 0, 2: 0, 3: 0, 4: 1, 5: 1}
    assert fresh.rating_average == pytest.approx(4.5)
    review.refresh_from_db()
    assert (review.rating, review.title) == (5, "Better now")


def test_editing_only_the_text_leaves_counters_alone(user, agent):
    review = services.create_review(user=user, agent=agent, rating=3)
    services.update_review(review=review, body="More detail")
    fresh = _fresh(agent)
    assert (fresh.rating_count, fresh.ratings_3, fresh.rating_average) == (1, 1, 3.0)


def test_deleting_the_last_review_resets_the_average(user, agent):
    review = services.create_review(user=user, agent=agent, rating=4)
    assert services.delete_review(review=review) is True
    assert services.delete_review(review=review) is False
    fresh = _fresh(agent)
    assert (fresh.rating_count, fresh.rating_average, fresh.ratings_4) == (0, 0.0, 0)


def test_hidden_reviews_do_not_count(agent):
    review = services.create_review(user=UserFactory(), agent=agent, rating=1)
    services.create_review(user=UserFactory(), agent=agent, rating=5)
    assert services.set_review_hidden(review=review, hidden=True) is True
    assert services.set_review_hidden(review=review, hidden=True) is False
    fresh = _fresh(agent)
    assert (fresh.rating_count, fresh.rating_average) == (1, 5.0)
    services.set_review_hidden(review=review, hidden=False)
    fresh = _fresh(agent)
    assert (fresh.rating_count, fresh.rating_average) == (2, 3.0)


def test_editing_a_hidden_review_does_not_touch_counters(agent):
    review = services.create_review(user=UserFactory(), agent=agent, rating=1)
    services.set_review_hidden(review=review, hidden=True)
    services.update_review(review=review, rating=5)
    services.delete_review(review=review)
    fresh = _fresh(agent)
    assert (fresh.rating_count, fresh.ratings_1, fresh.ratings_5) == (0, 0, 0)


def test_deleting_a_user_recounts_the_agents_they_touched(agent):
    leaving, staying = UserFactory(), UserFactory()
    other = AgentFactory()
    for user in (leaving, staying):
        services.install_agent(user=user, agent=agent)
    services.install_agent(user=leaving, agent=other)
    services.create_review(user=leaving, agent=agent, rating=1)
    services.create_review(user=staying, agent=agent, rating=5)
    leaving.delete()
    assert (_fresh(agent).install_count, _fresh(agent).rating_average) == (1, 5.0)
    assert _fresh(other).install_count == 0
    assert services.find_counter_drift() == []


def test_feature_and_deactivate_in_bulk():
    agents = AgentFactory.create_batch(3)
    ids = [a.pk for a in agents]
    assert services.set_agents_flag(agent_ids=ids, is_featured=True) == 3
    assert services.set_agents_flag(agent_ids=ids, is_featured=True) == 0
    assert services.set_agents_flag(agent_ids=ids[:1], is_active=False) == 1
    assert list(Agent.objects.featured().values_list("pk", flat=True).order_by("pk")) == ids[1:]


def test_drift_is_found_and_repaired():
    agent = AgentFactory()
    services.install_agent(user=UserFactory(), agent=agent)
    ReviewFactory(agent=agent, rating=2)  # a raw row the counters do not know about
    Agent.objects.filter(pk=agent.pk).update(install_count=7)
    drift = services.find_counter_drift()
    assert len(drift) == 1
    assert drift[0]["install_count"] == (7, 1)
    assert drift[0]["rating_count"] == (0, 1)
    services.recount_agents()
    assert services.find_counter_drift() == []
    fresh = _fresh(agent)
    assert (fresh.install_count, fresh.ratings_2, fresh.rating_average) == (1, 1, 2.0)
