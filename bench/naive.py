"""The naive baseline: the same endpoints as a plain DRF tutorial would write them.

Plain ModelViewSets, LimitOffsetPagination (a COUNT per page, OFFSET), no caching, no
select_related / prefetch_related (one query per nested object), aggregates counted per
request. Bench-only: mounted under /naive/ by bench/naive_urls.py, never by the app.
"""

from django.contrib.auth import get_user_model
from django.db.models import Avg, Count, Q
from django.http import JsonResponse
from rest_framework import authentication, permissions, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from knowledge.models import KnowledgeEntry
from marketplace.models import Agent, Category, Installation, Publisher, Review

AUTH = [authentication.TokenAuthentication, authentication.SessionAuthentication]


class Pagination(LimitOffsetPagination):
    default_limit = 20
    max_limit = 100


class CategorySerializer(serializers.ModelSerializer):
    class Meta:
        model = Category
        fields = ["slug", "name"]


class PublisherSerializer(serializers.ModelSerializer):
    class Meta:
        model = Publisher
        fields = ["slug", "name", "verified"]


class AgentSerializer(serializers.ModelSerializer):
    category = CategorySerializer()
    publisher = PublisherSerializer()

    class Meta:
        model = Agent
        fields = [
            "id",
            "slug",
            "name",
            "tagline",
            "category",
            "publisher",
            "rating_average",
            "rating_count",
            "install_count",
            "is_featured",
            "created_at",
        ]


class ReviewSerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="user.username")

    class Meta:
        model = Review
        fields = ["id", "rating", "title", "body", "author", "created_at"]


class AgentDetailSerializer(AgentSerializer):
    rating_distribution = serializers.SerializerMethodField()
    recent_reviews = serializers.SerializerMethodField()

    class Meta(AgentSerializer.Meta):
        fields = [
            *AgentSerializer.Meta.fields,
            "description",
            "version",
            "homepage_url",
            "source_url",
            "tags",
            "rating_distribution",
            "recent_reviews",
        ]

    def get_rating_distribution(self, agent):
        counts = dict(
            agent.reviews.filter(is_hidden=False)
            .values_list("rating")
            .annotate(n=Count("id"))
            .values_list("rating", "n")
        )
        return {r: counts.get(r, 0) for r in range(1, 6)}

    def get_recent_reviews(self, agent):
        reviews = agent.reviews.filter(is_hidden=False).order_by("-created_at")[:5]
        return ReviewSerializer(reviews, many=True).data


class AgentViewSet(viewsets.ModelViewSet):
    serializer_class = AgentSerializer
    pagination_class = Pagination
    authentication_classes = AUTH
    permission_classes = [permissions.IsAuthenticatedOrReadOnly]
    http_method_names = ["get", "head", "options"]  # the baseline is read-only

    def get_queryset(self):
        queryset = Agent.objects.filter(is_active=True).order_by("-rating_average", "-id")
        category = self.request.query_params.get("category")
        if category:
            queryset = queryset.filter(category__slug=category)
        return queryset

    def get_serializer_class(self):
        return AgentDetailSerializer if self.action == "retrieve" else AgentSerializer

    @action(detail=False)
    def featured(self, request):
        return self._page(self.get_queryset().filter(is_featured=True))

    @action(detail=False)
    def search(self, request):
        q = request.query_params.get("q", "")
        matches = Q(name__icontains=q) | Q(tagline__icontains=q) | Q(description__icontains=q)
        return self._page(self.get_queryset().filter(matches))

    def _page(self, queryset):
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(AgentSerializer(page, many=True).data)


class InstallationSerializer(serializers.ModelSerializer):
    agent = AgentSerializer()

    class Meta:
        model = Installation
        fields = ["id", "agent", "installed_at"]


class MyInstallationViewSet(viewsets.ModelViewSet):
    serializer_class = InstallationSerializer
    pagination_class = Pagination
    authentication_classes = AUTH
    permission_classes = [permissions.IsAuthenticated]
    http_method_names = ["get", "head", "options"]

    def get_queryset(self):
        return Installation.objects.filter(user=self.request.user).order_by("-installed_at")


class KnowledgeEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = KnowledgeEntry
        fields = [
            "id",
            "content_type",
            "title",
            "body",
            "source_url",
            "agent",
            "tags",
            "created_at",
            "updated_at",
        ]


class KnowledgeEntryViewSet(viewsets.ModelViewSet):
    serializer_class = KnowledgeEntrySerializer
    pagination_class = Pagination
    authentication_classes = AUTH
    permission_classes = [permissions.IsAuthenticated]
    http_method_names = ["get", "head", "options"]

    def get_queryset(self):
        return KnowledgeEntry.objects.filter(user=self.request.user).order_by("-updated_at")


def naive_stats() -> dict:
    """Marketplace totals counted over the rows, as a first version would on every request."""
    reviews = Review.objects.filter(is_hidden=False)
    distribution = dict(reviews.values_list("rating").annotate(n=Count("id")))
    top = (
        Agent.objects.filter(is_active=True)
        .annotate(installs=Count("installations"))
        .order_by("-installs")[:5]
    )
    categories = Category.objects.annotate(n=Count("agents")).order_by("position")
    return {
        "total_agents": Agent.objects.count(),
        "active_agents": Agent.objects.filter(is_active=True).count(),
        "featured_agents": Agent.objects.filter(is_featured=True).count(),
        "total_installations": Installation.objects.count(),
        "total_reviews": reviews.count(),
        "total_users": get_user_model().objects.count(),
        "average_rating": reviews.aggregate(avg=Avg("rating"))["avg"],
        "rating_distribution": {r: distribution.get(r, 0) for r in range(1, 6)},
        "categories": [{"slug": c.slug, "agents": c.n} for c in categories],
        "top_agents": [{"id": a.id, "name": a.name, "installs": a.installs} for a in top],
    }


class StatsView(APIView):
    authentication_classes = AUTH
    permission_classes = [permissions.AllowAny]

    def get(self, request):
        return Response(naive_stats())


def floor(request):
    """The floor: the least a request can cost through the same gunicorn and middleware."""
    return JsonResponse({"ok": True})
