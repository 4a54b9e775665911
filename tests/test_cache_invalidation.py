"""Every write path x every kind of cached read: after the write (and its commit), each warm
cached read answers exactly what the view computes with caching off.

The reads are stand-ins shaped like the real ones (issues 3 and 4): a listing (namespace
lists), an agent detail by id (agent:<id>, per user), an agent page by slug (its agent
declared while running), the user's installations and the user's review (user:<id>).
In CI this runs on PostgreSQL + Redis; locally on whatever the settings give.
"""

import pytest
from django.http import JsonResponse
from django.shortcuts import get_object_or_404
from django.test import Client, override_settings
from django.urls import path
from rest_framework.authtoken.models import Token

from marketplace import caching, services
from marketplace.caching import cached_response, depends
from marketplace.models import Agent, Installation, Review
from tests.factories import AgentFactory, CategoryFactory, UserFactory

pytestmark = [pytest.mark.urls(__name__), pytest.mark.django_db]


def _card(agent):
    return {
        "slug": agent.slug,
        "name": agent.name,
        "installs": agent.install_count,
        "rating": round(agent.rating_average, 3),
        "reviews": agent.rating_count,
        "featured": agent.is_featured,
        "category": agent.category.name,
        "publisher": agent.publisher.name,
    }


@cached_response("lists", ttl=caching.LISTS_TTL)
def listing(request):
    agents = Agent.objects.listed().for_cards().ordered("-installs")
    return JsonResponse({"results": [_card(agent) for agent in agents]})


@cached_response("agent:{pk}", ttl=caching.DETAIL_TTL, per_user=True)
def detail(request, pk):
    agent = get_object_or_404(Agent.objects.listed().for_detail(), pk=pk)
    mine = Installation.objects.filter(user_id=request.user.pk, agent=agent).exists()
    reviews = [(r.title, r.rating) for r in agent.recent_reviews]
    return JsonResponse({**_card(agent), "reviews_shown": reviews, "is_installed": mine})


@cached_response("agent", ttl=caching.DETAIL_TTL, per_user=True)
def page(request, slug):
    agent = get_object_or_404(Agent.objects.listed(), slug=slug)
    depends(request, caching.agent_ns(agent.pk))
    return JsonResponse(_card(agent))


@cached_response("user", ttl=caching.USER_TTL, per_user=True)
def mine(request):
    slugs = Installation.objects.filter(user_id=request.user.pk).values_list("agent__slug")
    return JsonResponse({"agents": sorted(slug for (slug,) in slugs)})


@cached_response("user", ttl=caching.USER_TTL, per_user=True, depends_on=["agent:{pk}"])
def my_review(request, pk):
    review = Review.objects.filter(user_id=request.user.pk, agent_id=pk).first()
    return JsonResponse({"review": review and [review.title, review.rating, review.is_hidden]})


urlpatterns = [
    path("agents/", listing),
    path("agents/<int:pk>/", detail),
    path("agents/<int:pk>/review/", my_review),
    path("pages/<slug:slug>/", page),
    path("me/", mine),
]


class World:
    def __init__(self):
        self.user = UserFactory(username="writer")
        self.agent = AgentFactory(name="Alpha")
        self.other = AgentFactory(name="Beta")
        token = Token.objects.create(user=self.user)
        self.as_user = Client(HTTP_AUTHORIZATION=f"Token {token.key}")
        self.anonymous = Client()

    def review(self):
        return Review.objects.get(user=self.user, agent=self.agent)

    def reads(self):
        pk = self.agent.pk
        return [
            (self.anonymous, "/agents/"),
            (self.as_user, "/agents/"),
            (self.anonymous, f"/agents/{pk}/"),
            (self.as_user, f"/agents/{pk}/"),
            (self.anonymous, f"/pages/{self.agent.slug}/"),
            (self.as_user, "/me/"),
            (self.as_user, f"/agents/{pk}/review/"),
        ]


def _installed(w):
    services.install_agent(user=w.user, agent=w.agent)


def _installed_behind_the_counters(w):
    Installation.objects.create(user=w.user, agent=w.agent)  # install_count stays 0


def _reviewed(w):
    services.create_review(user=w.user, agent=w.agent, rating=4, title="Good")


def _rename_agent(w):
    w.agent.name = "Alpha Prime"
    w.agent.tagline = "Now better"
    w.agent.save()


def _rename(model_name):
    def write(w):
        related = getattr(w.agent, model_name)
        related.name = f"{related.name} renamed"
        related.save()

    return write


def _move_to_new_category(w):
    w.agent.category = CategoryFactory(name="Fresh")
    w.agent.save()


# name: (prepare, write)
WRITES = {
    "install": (None, _installed),
    "install again (no change)": (_installed, _installed),
    "uninstall": (_installed, lambda w: services.uninstall_agent(user=w.user, agent=w.agent)),
    "create review": (None, _reviewed),
    "update review rating": (
        _reviewed,
        lambda w: services.update_review(review=w.review(), rating=1, title="Meh"),
    ),
    "delete review": (_reviewed, lambda w: services.delete_review(review=w.review())),
    "hide review": (
        _reviewed,
        lambda w: services.set_review_hidden(review=w.review(), hidden=True),
    ),
    "feature": (None, lambda w: services.set_agents_flag(agent_ids=[w.agent.pk], is_featured=True)),
    "deactivate other": (
        None,
        lambda w: services.set_agents_flag(agent_ids=[w.other.pk], is_active=False),
    ),
    "recount one (drifted)": (
        _installed_behind_the_counters,
        lambda w: services.recount_agents([w.agent.pk]),
    ),
    "recount all (drifted)": (
        _installed_behind_the_counters,
        lambda w: services.recount_agents(),
    ),
    "admin edits agent": (None, _rename_agent),
    "admin moves agent to a new category": (None, _move_to_new_category),
    "admin renames category": (None, _rename("category")),
    "admin renames publisher": (None, _rename("publisher")),
    "admin adds agent": (None, lambda w: AgentFactory(name="Gamma")),
    "admin deletes other agent": (None, lambda w: w.other.delete()),
    "user deleted with their review": (
        lambda w: services.create_review(user=UserFactory(), agent=w.agent, rating=2),
        lambda w: Review.objects.exclude(user=w.user).get().user.delete(),
    ),
    "forget_all (seed_demo)": (None, lambda w: caching.forget_all()),
}


@pytest.mark.parametrize("write_name", list(WRITES))
def test_every_cached_read_is_fresh_after_every_write(
    write_name, django_capture_on_commit_callbacks
):
    prepare, write = WRITES[write_name]
    w = World()
    if prepare:
        with django_capture_on_commit_callbacks(execute=True):
            prepare(w)
    for client, url in w.reads():  # warm: signed-in copies are stored on the 2nd request
        for _ in range(3):
            assert client.get(url).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        write(w)
    for client, url in w.reads():
        cached = client.get(url)
        with override_settings(CACHE_ENABLED=False):
            truth = client.get(url)
        assert (cached.status_code, cached.json()) == (truth.status_code, truth.json()), url


def test_the_matrix_can_see_staleness(django_capture_on_commit_callbacks):
    """Control: the same write without its invalidation leaves warm copies stale."""
    w = World()
    for client, url in w.reads():
        for _ in range(3):
            client.get(url)
    Agent.objects.filter(pk=w.agent.pk).update(install_count=5)  # no forget
    cached = w.anonymous.get("/agents/").json()
    with override_settings(CACHE_ENABLED=False):
        truth = w.anonymous.get("/agents/").json()
    assert cached != truth
