"""Marketplace API views: read input, call one QuerySet method or one service, render.

Every list pages with the shared key-set cursor (aios.pagination): a list costs one query for
its page whatever its size (plus one for the user behind a token). Writes go through
marketplace.services, which keep the agent counters exact.

Installing is idempotent: POST answers 201 when it installs and 200 when the agent was already
installed; DELETE answers 204 whether or not it was installed (the state asked for holds).
"""

from functools import cached_property

from django.contrib.auth import authenticate
from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from aios import replicas, throttling
from aios.api.errors import Conflict, errors
from aios.api.fields import validated
from aios.pagination import KeysetPagination
from aios.renderers import lean_renderers
from aios.response_cache import CachedResponseMixin, CachePolicy
from marketplace import caching, services
from marketplace.managers import AGENT_ORDERINGS, RECENT_REVIEWS
from marketplace.models import Agent, Category, Installation, Review
from marketplace.search import search_agents, search_facets, search_ordering
from marketplace.stats import marketplace_stats

from . import lean
from .serializers import (
    AgentCardSerializer,
    AgentDetailSerializer,
    AgentListParams,
    CategorySerializer,
    CredentialsSerializer,
    InstallationSerializer,
    OrderingParams,
    ReviewPatchSerializer,
    ReviewSerializer,
    ReviewWriteSerializer,
    SearchPageSerializer,
    SearchParams,
    StatsSerializer,
    TokenSerializer,
)


def no_such(model) -> Http404:
    """The 404 get_object_or_404 raises for `model`, for views reading through a Shape."""
    return Http404(f"No {model._meta.object_name} matches the given query.")


# --- Agent lists ------------------------------------------------------------------------------


# Agents as cards in a public ordering; subclasses name the agents and the parameters. (A
# comment, not a docstring: a docstring here would become both operations' description.)
@extend_schema(tags=["marketplace"])
class CardListView(CachedResponseMixin, generics.ListAPIView):
    serializer_class = AgentCardSerializer  # the schema; rows render through lean.cards
    permission_classes = [AllowAny]
    renderer_classes = lean_renderers()
    params_class = OrderingParams

    @cached_property
    def params(self) -> dict:
        return validated(self.params_class, self.request.query_params)

    def get_keyset_ordering(self):
        return AGENT_ORDERINGS[self.params["ordering"]]

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(lean.cards(page, request))


@extend_schema_view(
    get=extend_schema(
        operation_id="agents_list",
        summary="Active agents as cards",
        parameters=[AgentListParams],
        responses={200: AgentCardSerializer(many=True), **errors(400)},
    )
)
class AgentListView(CardListView):
    cache_policies = {
        "get": CachePolicy("lists", ttl=caching.LISTS_TTL, scope=caching.listing_scope)
    }
    params_class = AgentListParams

    def get_queryset(self):
        p = self.params
        return Agent.objects.card_shape(
            category=p.get("category") or None,
            featured=p.get("featured"),
            publisher=p.get("publisher") or None,
            tag=p.get("tag") or None,
            min_rating=p.get("min_rating"),
        )


@extend_schema_view(
    get=extend_schema(
        operation_id="agents_featured",
        summary="Featured agents as cards",
        parameters=[OrderingParams],
        responses={200: AgentCardSerializer(many=True), **errors(400)},
    )
)
class FeaturedAgentListView(CardListView):
    cache_policies = {
        "get": CachePolicy(
            caching.CATALOG_NS, ttl=caching.FEATURED_TTL, depends_on=[caching.FEATURED_NS]
        )
    }

    def get_queryset(self):
        return Agent.objects.card_shape(featured=True)  # featured(): listed and featured


@extend_schema_view(
    get=extend_schema(
        operation_id="categories_list",
        tags=["marketplace"],
        summary="Categories with their number of listed agents",
        responses={200: CategorySerializer(many=True), **errors(400)},
    )
)
class CategoryListView(CachedResponseMixin, generics.ListAPIView):
    # Counts of listed agents: only an agent edit (a flag, a move, a new agent) changes them.
    cache_policies = {"get": CachePolicy(caching.CATALOG_NS, ttl=caching.CATEGORIES_TTL)}
    serializer_class = CategorySerializer
    permission_classes = [AllowAny]

    def get_keyset_ordering(self):
        return ("position", "asc")

    def get_queryset(self):
        return Category.objects.with_agent_counts()


class StatsView(CachedResponseMixin, APIView):
    cache_policies = {"get": CachePolicy("lists", ttl=caching.STATS_TTL)}
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="marketplace_stats",
        tags=["marketplace"],
        summary="Marketplace totals, rating distribution, per-category counts, top agents",
        responses={200: StatsSerializer, **errors()},
    )
    def get(self, request):
        return Response(marketplace_stats())


# --- One agent --------------------------------------------------------------------------------


@extend_schema_view(
    get=extend_schema(
        operation_id="agent_detail",
        tags=["agents"],
        summary="An agent: card, description, links, ratings, latest reviews, your state",
        responses={200: AgentDetailSerializer, **errors(404)},
    )
)
class AgentDetailView(CachedResponseMixin, generics.RetrieveAPIView):
    # Shared by anonymous readers. A signed-in reader's copy would carry their is_installed
    # and my_review; in the bench's mix (200 users, Zipf over 10,000 agents) about one in ten
    # was asked for again within its 60 s, fewer after the user's own writes retired it, so
    # storing each (compressed twice) cost more than the rare hit saved.
    cache_policies = {
        "get": CachePolicy(
            "agent:{pk}", ttl=caching.DETAIL_TTL, per_user=True, signed_in_copies=False
        )
    }
    serializer_class = AgentDetailSerializer  # the schema; rows render through lean.detail
    permission_classes = [AllowAny]
    renderer_classes = lean_renderers()

    def retrieve(self, request, *args, **kwargs):
        found = Agent.objects.detail_shape(self.kwargs["pk"], request.user).rows()
        if not found:
            raise no_such(Agent)
        row = found[0]
        reviews = (
            Review.objects.agent_shape(row["id"])
            .then(("first", RECENT_REVIEWS), lambda reviews: reviews[:RECENT_REVIEWS])
            .rows()
        )
        mine = None
        if request.user.is_authenticated:
            mine = Review.objects.own_shape(row["id"], request.user).rows()
        return Response(lean.detail(row, request, reviews=reviews, mine=mine))


@extend_schema(tags=["agents"])
class AgentSearchView(CachedResponseMixin, APIView):
    """GET with query parameters and POST with a JSON body run the same search."""

    cache_policies = {"get": CachePolicy("lists", ttl=caching.LISTS_TTL)}  # GET only
    permission_classes = [AllowAny]
    throttle_classes = [
        throttling.AnonRateThrottle,
        throttling.SignedInRateThrottle,
        throttling.ScopedRateThrottle,
    ]
    throttle_scope = "search"
    renderer_classes = lean_renderers()

    def search(self, request, data):
        p = validated(SearchParams, data)
        filters = {"q": p["q"], "min_rating": p.get("min_rating")}
        agents = search_agents(**filters, category=p.get("category")).card_rows("score")
        paginator = KeysetPagination()
        page = paginator.paginate(
            agents,
            request=request,
            ordering=search_ordering(p["ordering"]),
            cursor=p.get("cursor"),
            page_size=p["page_size"],
            link_params={k: v for k, v in p.items() if k != "cursor"},
        )
        results = lean.search_results(page, request)  # as SearchResultSerializer writes them
        response = paginator.get_paginated_response(results)
        response.data["facets"] = search_facets(**filters)
        return response

    @extend_schema(
        operation_id="agents_search",
        summary="Search agents (query parameters)",
        parameters=[SearchParams],
        responses={200: SearchPageSerializer, **errors(400)},
    )
    def get(self, request):
        return self.search(request, request.query_params)

    @extend_schema(
        operation_id="agents_search_post",
        summary="Search agents (JSON body with the same keys as GET)",
        request=SearchParams,
        responses={200: SearchPageSerializer, **errors(400, 403)},
    )
    def post(self, request):
        return self.search(request, request.data)


# --- Installations ----------------------------------------------------------------------------


@extend_schema(tags=["installations"])
class InstallView(APIView):
    permission_classes = [IsAuthenticated]
    renderer_classes = lean_renderers()

    @extend_schema(
        operation_id="agent_install",
        summary="Install an agent (idempotent)",
        request=None,
        responses={
            201: OpenApiResponse(InstallationSerializer, description="Installed now."),
            200: OpenApiResponse(InstallationSerializer, description="Was already installed."),
            **errors(401, 403, 404),
        },
    )
    def post(self, request, pk):
        agent = get_object_or_404(Agent.objects.listed().only("id", "is_active"), pk=pk)
        try:
            installation, created = services.install_agent(user=request.user, agent=agent)
        except services.AgentUnavailable as exc:
            raise NotFound() from exc
        # Read back after the service: the card shows the counter it just moved.
        row = Agent.objects.card_row_shape(agent.pk).rows()[0]
        body = lean.installation(installation, row, request)  # InstallationSerializer's bytes
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(
        operation_id="agent_uninstall",
        summary="Uninstall an agent (idempotent: 204 also when it was not installed)",
        request=None,
        responses={204: None, **errors(401, 403, 404)},
    )
    def delete(self, request, pk):
        # Any agent, listed or not: a retired agent can still be removed.
        agent = get_object_or_404(Agent.objects.only("id"), pk=pk)
        services.uninstall_agent(user=request.user, agent=agent)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    get=extend_schema(
        operation_id="my_installations",
        tags=["installations"],
        summary="Your installed agents, latest first",
        responses={200: InstallationSerializer(many=True), **errors(400, 401)},
    )
)
class MyInstallationListView(CachedResponseMixin, generics.ListAPIView):
    # Its cards show counters anybody's install moves: it follows the agents on the page.
    cache_policies = {
        "get": CachePolicy(
            "user", ttl=caching.USER_TTL, per_user=True, follows=caching.follows_results_agents
        )
    }
    serializer_class = InstallationSerializer  # the schema; rows render through lean
    permission_classes = [IsAuthenticated]
    renderer_classes = lean_renderers()

    def get_keyset_ordering(self):
        return ("installed_at", "desc")

    def get_queryset(self):
        return Installation.objects.card_shape(self.request.user)

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(lean.installations(page, request))


# --- Reviews ----------------------------------------------------------------------------------


@extend_schema(tags=["reviews"])
class AgentReviewListView(CachedResponseMixin, generics.ListAPIView):
    cache_policies = {"get": CachePolicy("agent:{pk}", ttl=caching.DETAIL_TTL)}
    serializer_class = ReviewSerializer  # the schema; rows render through lean.reviews
    renderer_classes = lean_renderers()

    def get_keyset_ordering(self):
        return ("created_at", "desc")

    def get_queryset(self):
        return Review.objects.agent_shape(self.kwargs["pk"])

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(lean.reviews(page))

    def get_agent(self):
        return get_object_or_404(
            Agent.objects.listed().only("id", "is_active"), pk=self.kwargs["pk"]
        )

    @extend_schema(
        operation_id="agent_reviews_list",
        summary="An agent's visible reviews, latest first",
        responses={200: ReviewSerializer(many=True), **errors(400, 404)},
    )
    def get(self, request, *args, **kwargs):
        if not Agent.objects.listed_shape(self.kwargs["pk"]).rows():
            raise no_such(Agent)
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="agent_review_create",
        summary="Review an agent (one review per user)",
        request=ReviewWriteSerializer,
        responses={201: ReviewSerializer, **errors(400, 401, 403, 404, 409)},
    )
    def post(self, request, pk):
        agent = self.get_agent()
        data = validated(ReviewWriteSerializer, request.data)
        try:
            review = services.create_review(user=request.user, agent=agent, **data)
        except services.AgentUnavailable as exc:
            raise NotFound() from exc
        except services.ReviewAlreadyExists as exc:
            raise Conflict("You already reviewed this agent: edit reviews/mine/ instead.") from exc
        except services.InvalidRating as exc:
            raise ValidationError({"rating": [str(exc)]}) from exc
        body = lean.created_review(review, request.user)  # ReviewSerializer's bytes
        return Response(body, status=status.HTTP_201_CREATED)


@extend_schema(tags=["reviews"])
class MyReviewView(CachedResponseMixin, APIView):
    cache_policies = {
        "get": CachePolicy("user", ttl=caching.USER_TTL, per_user=True, depends_on=["agent:{pk}"])
    }
    permission_classes = [IsAuthenticated]

    def get_review(self, request, pk) -> Review:
        # agent__pk, not agent_id: only the former turns an id past the bigint range into
        # "no rows" (a 404) instead of a database error (a 500; tests/security/test_api_fuzz).
        review = Review.objects.filter(agent__pk=pk, user=request.user).with_author().first()
        if review is None:
            raise NotFound("You have not reviewed this agent.")
        return review

    def _update(self, request, pk, *, partial: bool):
        review = self.get_review(request, pk)
        serializer = ReviewPatchSerializer if partial else ReviewWriteSerializer
        data = validated(serializer, request.data)
        try:
            review = services.update_review(review=review, **data)
        except services.InvalidRating as exc:
            raise ValidationError({"rating": [str(exc)]}) from exc
        except Review.DoesNotExist as exc:  # deleted by a parallel request
            raise NotFound() from exc
        review.user = request.user
        return Response(ReviewSerializer(review).data)

    @extend_schema(
        operation_id="my_review_get",
        summary="Your review of an agent",
        responses={200: ReviewSerializer, **errors(401, 404)},
    )
    def get(self, request, pk):
        return Response(ReviewSerializer(self.get_review(request, pk)).data)

    @extend_schema(
        operation_id="my_review_replace",
        summary="Replace your review (title and body default to empty)",
        request=ReviewWriteSerializer,
        responses={200: ReviewSerializer, **errors(400, 401, 403, 404)},
    )
    def put(self, request, pk):
        return self._update(request, pk, partial=False)

    @extend_schema(
        operation_id="my_review_update",
        summary="Change some fields of your review",
        request=ReviewPatchSerializer,
        responses={200: ReviewSerializer, **errors(400, 401, 403, 404)},
    )
    def patch(self, request, pk):
        return self._update(request, pk, partial=True)

    @extend_schema(
        operation_id="my_review_delete",
        summary="Delete your review",
        request=None,
        responses={204: None, **errors(401, 403, 404)},
    )
    def delete(self, request, pk):
        services.delete_review(review=self.get_review(request, pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Auth -------------------------------------------------------------------------------------


class TokenView(APIView):
    """Username and password for an API token (the same token on every call)."""

    authentication_classes = []  # no session, hence no CSRF check on the login itself
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="auth_token",
        tags=["auth"],
        summary="Get an API token",
        request=CredentialsSerializer,
        responses={200: TokenSerializer, **errors(400)},
    )
    def post(self, request):
        data = validated(CredentialsSerializer, request.data)
        throttling.raise_if_throttled(request, data["username"])  # brute force: 429
        user = authenticate(request, username=data["username"], password=data["password"])
        if user is None:
            throttling.record_failure(request, data["username"])
            raise ValidationError(
                {"non_field_errors": ["Unable to log in with these credentials."]}
            )
        throttling.record_success(request, data["username"])
        token, created = Token.objects.get_or_create(user=user)
        if created:  # its first calls may come before a replica has it
            replicas.note_credential(f"Token {token.key}")
        return Response({"token": token.key})
