"""Server-rendered pages. Each view reads input, asks one QuerySet shape or service, renders."""

from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import SuspiciousFileOperation
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils._os import safe_join
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from aios.pagination import page_or_first
from aios.response_cache import CachePolicy

from . import caching, services
from .forms import BrowseForm, ReviewForm, SearchForm, SignupForm
from .icons import ICON_DIR
from .managers import AGENT_ORDERINGS
from .models import RATINGS, Agent, Installation, Review
from .search import (
    FACET_CAP,
    RELEVANCE,
    SEARCH_CANDIDATES,
    search_agents,
    search_facets,
    search_ordering,
    suggest_query,
)
from .stats import marketplace_stats

SHELF_SIZE = 8
PAGE_SIZE = 24
REVIEWS_PAGE_SIZE = 10
ICON_MAX_AGE = 365 * 24 * 60 * 60


def _safe_next(request, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


# --- Browsing ---------------------------------------------------------------------------------


# Pages: anonymous visitors share a copy; a signed-in page (their name, a CSRF token) is
# cached per user (marketplace.caching).
@CachePolicy("lists", ttl=caching.LISTS_TTL, per_user=True)
@require_safe
def home(request):
    listed = Agent.objects.listed()
    shelves = [
        ("Featured", "featured", listed.featured().for_cards().ordered("-rating")),
        ("Top rated", "-rating", listed.for_cards().ordered("-rating")),
        ("Most installed", "-installs", listed.for_cards().ordered("-installs")),
        ("Newest", "-created", listed.for_cards().ordered("-created")),
    ]
    context = {
        "shelves": [
            {"title": title, "key": key, "agents": list(qs[:SHELF_SIZE])}
            for title, key, qs in shelves
        ],
        "categories": list(listed.count_by_category()),
    }
    return render(request, "marketplace/home.html", context)


@CachePolicy("lists", ttl=caching.LISTS_TTL, per_user=True, scope=caching.listing_scope)
@require_safe
def agent_list(request):
    categories = list(Agent.objects.listed().count_by_category())
    form = BrowseForm(request.GET, categories=categories)
    filters = form.filters()
    agents = Agent.objects.filtered(
        category=filters["category"] or None, min_rating=filters["min_rating"]
    ).for_cards()
    ordering = AGENT_ORDERINGS[filters["sort"]]
    page, status = page_or_first(request, agents, ordering=ordering, page_size=PAGE_SIZE)
    status = 400 if form.errors else status  # an invalid filter: marketplace.filters
    category_name = dict(form.fields["category"].choices).get(filters["category"], "")
    context = {
        "nav": "browse",
        "form": form,
        "filters": filters,
        "page": page,
        "category_name": category_name.rsplit(" (", 1)[0] if filters["category"] else "",
    }
    return render(request, "marketplace/agent_list.html", context, status=status)


@CachePolicy("lists", ttl=caching.LISTS_TTL, per_user=True)
@require_safe
def search(request):
    form = SearchForm(request.GET)
    context = {"form": form, "nav": "search", "searched": False}
    if not form.is_valid():
        context["categories"] = list(Agent.objects.listed().count_by_category())
        return render(request, "marketplace/search.html", context, status=400)
    data = form.cleaned_data
    q = data["q"].strip()
    category = data["category"]
    min_rating = int(data["min_rating"]) if data["min_rating"] else None
    context.update(query=q, category=category, min_rating=min_rating)
    if not q and not category:
        context["categories"] = list(Agent.objects.listed().count_by_category())
        return render(request, "marketplace/search.html", context)
    agents = search_agents(q=q, category=category or None, min_rating=min_rating)
    ordering = search_ordering(data["sort"] or RELEVANCE)
    page, status = page_or_first(request, agents, ordering=ordering, page_size=PAGE_SIZE)
    facets = search_facets(q=q, min_rating=min_rating)
    context.update(
        searched=True,
        page=page,
        facets=facets,
        facets_capped=any(f["capped"] for f in facets),
        facet_cap=FACET_CAP,
        candidates=SEARCH_CANDIDATES,
        suggestion=suggest_query(q) if q and not page.items else None,
    )
    return render(request, "marketplace/search.html", context, status=status)


@CachePolicy("lists", ttl=caching.STATS_TTL, per_user=True)
@require_safe
def stats(request):
    data = marketplace_stats()
    categories = data["categories"]
    context = {
        "nav": "stats",
        "stats": data,
        "agents_per_category": [
            {"label": c["name"], "value": c["agent_count"]} for c in categories
        ],
        "installs_per_category": [
            {"label": c["name"], "value": c["install_count"]} for c in categories
        ],
        "max_agents": max((c["agent_count"] for c in categories), default=0),
        "max_installs": max((c["install_count"] for c in categories), default=0),
    }
    return render(request, "marketplace/stats.html", context)


def _detail_context(agent, *, review_form=None):
    """The agent page's context; `agent` comes from for_detail().for_viewer(request.user)."""
    installed = agent.viewer_installed
    my_review = next(iter(getattr(agent, "viewer_reviews", ())), None)
    if review_form is None:
        initial = {}
        if my_review is not None:
            initial = {"rating": my_review.rating, "title": my_review.title, "body": my_review.body}
        review_form = ReviewForm(initial=initial)
    distribution = agent.rating_distribution
    histogram = [
        {"stars": r, "count": distribution[r], "total": agent.rating_count}
        for r in reversed(RATINGS)
    ]
    return {
        "agent": agent,
        "installed": installed,
        "my_review": my_review,
        "review_form": review_form,
        "histogram": histogram,
        "more_reviews": agent.rating_count > len(agent.recent_reviews),
    }


@CachePolicy("agent", ttl=caching.DETAIL_TTL, per_user=True, follows=caching.follows_agent)
@require_safe
def agent_detail(request, slug):
    agent = get_object_or_404(
        Agent.objects.listed().for_detail().for_viewer(request.user), slug=slug
    )
    context = _detail_context(agent)
    return TemplateResponse(request, "marketplace/agent_detail.html", context)


@CachePolicy("agent", ttl=caching.DETAIL_TTL, per_user=True, follows=caching.follows_agent)
@require_safe
def agent_reviews(request, slug):
    agent = get_object_or_404(Agent.objects.listed().for_cards(), slug=slug)
    page, status = page_or_first(
        request,
        Review.objects.for_agent(agent),
        ordering=("created_at", "desc"),
        page_size=REVIEWS_PAGE_SIZE,
    )
    context = {"agent": agent, "page": page}
    return TemplateResponse(request, "marketplace/agent_reviews.html", context, status=status)


# The cards show counters anybody's install moves: the copy follows the agents on the page.
@CachePolicy("user", ttl=caching.USER_TTL, per_user=True, follows=caching.follows_page_agents)
@login_required
@require_safe
def my_agents(request):
    installs = Installation.objects.for_user(request.user).with_agent_card_fields()
    ordering = ("installed_at", "desc")
    page, status = page_or_first(request, installs, ordering=ordering, page_size=PAGE_SIZE)
    context = {"nav": "mine", "page": page}
    return TemplateResponse(request, "marketplace/my_agents.html", context, status=status)


# --- Installing -------------------------------------------------------------------------------


def _listed_agent(slug):
    return get_object_or_404(Agent.objects.listed(), slug=slug)


def _install_response(request, agent, *, message: str):
    # A plain form post and its redirect, with or without JS: static/js/site.js follows the
    # redirect and takes the fresh button and counts from the page (the API is /api/v1/...).
    messages.success(request, message)
    return redirect(_safe_next(request, agent.get_absolute_url()))


@login_required
@require_POST
def agent_install(request, slug):
    agent = _listed_agent(slug)
    try:
        _, created = services.install_agent(user=request.user, agent=agent)
    except services.AgentUnavailable as exc:
        raise Http404("This agent is no longer available.") from exc
    message = f"{agent.name} is installed." if created else f"{agent.name} was already installed."
    return _install_response(request, agent, message=message)


@login_required
@require_POST
def agent_uninstall(request, slug):
    # Inactive agents can still be uninstalled (from My agents): no listed() filter here.
    agent = get_object_or_404(Agent.objects.all(), slug=slug)
    removed = services.uninstall_agent(user=request.user, agent=agent)
    message = f"{agent.name} is uninstalled." if removed else f"{agent.name} was not installed."
    return _install_response(request, agent, message=message)


# --- Reviews ----------------------------------------------------------------------------------


def _review_form_error(request, slug, form):
    """The agent page again, with the bound form and its errors next to the fields."""
    agent = get_object_or_404(
        Agent.objects.listed().for_detail().for_viewer(request.user), slug=slug
    )
    context = _detail_context(agent, review_form=form)
    return render(request, "marketplace/agent_detail.html", context, status=400)


@login_required
@require_POST
def review_create(request, slug):
    agent = _listed_agent(slug)
    form = ReviewForm(request.POST)
    if form.is_valid():
        try:
            services.create_review(user=request.user, agent=agent, **form.cleaned_data)
        except services.AgentUnavailable as exc:
            raise Http404("This agent is no longer available.") from exc
        except services.ReviewAlreadyExists:
            form.add_error(None, "You have already reviewed this agent: edit your review instead.")
        except services.InvalidRating as exc:
            form.add_error("rating", str(exc))
        else:
            messages.success(request, "Thanks, your review is published.")
            return redirect(f"{agent.get_absolute_url()}#my-review")
    return _review_form_error(request, slug, form)


def _my_review(request, slug):
    agent = _listed_agent(slug)
    return agent, get_object_or_404(Review.objects.all(), agent=agent, user=request.user)


@login_required
@require_POST
def review_update(request, slug):
    agent, review = _my_review(request, slug)
    form = ReviewForm(request.POST)
    if form.is_valid():
        try:
            services.update_review(review=review, **form.cleaned_data)
        except services.InvalidRating as exc:
            form.add_error("rating", str(exc))
        except Review.DoesNotExist as exc:  # deleted in another tab meanwhile
            raise Http404("This review no longer exists.") from exc
        else:
            messages.success(request, "Your review is updated.")
            return redirect(f"{agent.get_absolute_url()}#my-review")
    return _review_form_error(request, slug, form)


@login_required
@require_POST
def review_delete(request, slug):
    agent, review = _my_review(request, slug)
    services.delete_review(review=review)
    messages.success(request, "Your review is deleted.")
    return redirect(agent.get_absolute_url())


# --- Accounts ---------------------------------------------------------------------------------


def signup(request):
    if request.user.is_authenticated:
        return redirect("home")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, f"Welcome, {user.username}! Your account is ready.")
        return redirect(_safe_next(request, reverse("home")))
    status = 400 if request.method == "POST" else 200
    return render(request, "registration/signup.html", {"form": form}, status=status)


# --- Media ------------------------------------------------------------------------------------


@require_safe
def icon_file(request, name):
    """An agent icon from MEDIA_ROOT. Icon names are content-addressed, hence immutable."""
    if not name.endswith(".webp"):
        raise Http404
    try:
        path = Path(safe_join(Path(settings.MEDIA_ROOT) / ICON_DIR, name))
    except SuspiciousFileOperation as exc:  # ../ tricks
        raise Http404 from exc
    if not path.is_file():
        raise Http404
    response = FileResponse(path.open("rb"), content_type="image/webp")
    response["Cache-Control"] = f"max-age={ICON_MAX_AGE}, public, immutable"
    return response
