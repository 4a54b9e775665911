"""marketplace.stats and GET /api/v1/marketplace/stats/."""

import pytest
from rest_framework.test import APIClient

from marketplace.models import Agent
from marketplace.stats import marketplace_stats
from tests.factories import AgentFactory, CategoryFactory


@pytest.fixture
def catalogue(db):
    writing, code = CategoryFactory(name="Writing"), CategoryFactory(name="Code")
    return {
        "exact": AgentFactory(name="Translator", category=writing, rating_count=3),
        "pro": AgentFactory(
            name="Translator Pro", category=writing, rating_count=500, install_count=90_000
        ),
        "tagline": AgentFactory(name="Polyglot", category=code, rating_count=10),
        "description": AgentFactory(name="Helper", category=code),
        "other": AgentFactory(name="Code Reviewer", category=code),
        "hidden": AgentFactory(name="Translator Old", is_active=False),
    }


def test_stats_sum_the_stored_counters_in_two_queries(catalogue, django_assert_num_queries):
    Agent.objects.filter(pk=catalogue["pro"].pk).update(
        ratings_5=400, ratings_4=100, rating_count=500, is_featured=True
    )
    Agent.objects.filter(pk=catalogue["exact"].pk).update(ratings_2=3)
    with django_assert_num_queries(2):  # the category rollup with its sums, the top agents
        stats = marketplace_stats()
    assert stats["total_agents"] == 6
    assert stats["active_agents"] == 5
    assert stats["featured_agents"] == 1
    assert stats["total_installations"] == 90_000
    assert stats["total_reviews"] == 513
    assert stats["rating_distribution"] == {"1": 0, "2": 3, "3": 0, "4": 100, "5": 400}
    assert stats["average_rating"] == pytest.approx((6 + 400 + 2000) / 503, abs=1e-4)
    assert stats["top_agents"][0]["slug"] == catalogue["pro"].slug
    by_slug = {c["slug"]: c for c in stats["categories"]}
    assert by_slug["writing"] == {
        "slug": "writing",
        "name": "Writing",
        "agent_count": 2,
        "install_count": 90_000,
    }
    assert by_slug["code"]["agent_count"] == 3


def test_stats_on_an_empty_marketplace(db):
    stats = marketplace_stats()
    assert stats["total_agents"] == 0
    assert stats["total_installations"] == 0
    assert stats["average_rating"] is None
    assert stats["rating_distribution"] == {str(r): 0 for r in range(1, 6)}
    assert stats["top_agents"] == []


def test_stats_endpoint_returns_marketplace_stats(catalogue, django_assert_num_queries):
    with django_assert_num_queries(2):
        response = APIClient().get("/api/v1/marketplace/stats/")
    assert response.status_code == 200
    assert response.json() == marketplace_stats()
