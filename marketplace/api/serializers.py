"""Marketplace API shapes. Each reads only what its QuerySet method loaded; none queries."""

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from aios.api import fields
from aios.pagination import PageParams
from marketplace import filters
from marketplace.managers import AGENT_ORDERINGS, DEFAULT_AGENT_ORDERING, DETAIL_FIELDS
from marketplace.models import RATINGS, Agent, Category, Installation, Review
from marketplace.search import MAX_QUERY_LENGTH, RELEVANCE, SEARCH_ORDERINGS

# --- Query parameters -------------------------------------------------------------------------


class AgentListParams(serializers.Serializer):
    # Unknown category or publisher: 400 naming it, as on the pages (marketplace.filters).
    category = fields.SlugField(
        required=False, max_length=80, validators=[filters.validate_category]
    )
    featured = serializers.BooleanField(required=False, allow_null=True, default=None)
    publisher = fields.SlugField(
        required=False, max_length=120, validators=[filters.validate_publisher]
    )
    tag = fields.CharField(required=False, max_length=60)
    min_rating = fields.FloatField(required=False, min_value=0, max_value=5)
    ordering = fields.ChoiceField(choices=list(AGENT_ORDERINGS), default=DEFAULT_AGENT_ORDERING)


class OrderingParams(serializers.Serializer):
    ordering = fields.ChoiceField(choices=list(AGENT_ORDERINGS), default=DEFAULT_AGENT_ORDERING)


class SearchParams(PageParams):
    """The same keys as query parameters (GET) or a JSON body (POST)."""

    q = fields.CharField(max_length=MAX_QUERY_LENGTH, trim_whitespace=True)
    category = fields.SlugField(
        required=False, max_length=80, validators=[filters.validate_category]
    )
    min_rating = fields.FloatField(required=False, min_value=0, max_value=5)
    ordering = fields.ChoiceField(choices=list(SEARCH_ORDERINGS), default=RELEVANCE)


# --- Agents -------------------------------------------------------------------------------------


class CategoryRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Category
        fields = ["slug", "name"]


class PublisherRefSerializer(serializers.Serializer):
    slug = serializers.SlugField(read_only=True)
    name = serializers.CharField(read_only=True)
    verified = serializers.BooleanField(read_only=True)


class AgentCardSerializer(serializers.ModelSerializer):
    """A card. It describes the API's cards (the schema, and what tests compare with); the
    responses render through marketplace/api/lean.py, which writes the same bytes."""

    category = CategoryRefSerializer(read_only=True)
    publisher = PublisherRefSerializer(read_only=True)
    icon = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField(help_text="This agent in the API.")
    web_url = serializers.SerializerMethodField(help_text="This agent's page on the site.")

    class Meta:
        model = Agent
        fields = [
            "id",
            "slug",
            "name",
            "tagline",
            "icon",
            "category",
            "publisher",
            "rating_average",
            "rating_count",
            "install_count",
            "is_featured",
            "created_at",
            "updated_at",
            "url",
            "web_url",
        ]
        read_only_fields = fields

    def get_icon(self, agent) -> str | None:
        return agent.icon.url if agent.icon else None

    def get_url(self, agent) -> str:
        path = reverse("api:agent-detail", kwargs={"pk": agent.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path

    def get_web_url(self, agent) -> str:
        return reverse("agent-detail", kwargs={"slug": agent.slug})


class SearchResultSerializer(AgentCardSerializer):
    score = serializers.FloatField(read_only=True, help_text="Relevance; higher is better.")

    class Meta(AgentCardSerializer.Meta):
        fields = [*AgentCardSerializer.Meta.fields, "score"]
        read_only_fields = fields


class AuthorSerializer(serializers.Serializer):
    username = serializers.CharField(read_only=True)
    name = serializers.SerializerMethodField()

    def get_name(self, user) -> str:
        return user.get_full_name() or user.username


class ReviewSerializer(serializers.ModelSerializer):
    author = AuthorSerializer(source="user", read_only=True)
    agent = serializers.IntegerField(source="agent_id", read_only=True)

    class Meta:
        model = Review
        fields = ["id", "agent", "rating", "title", "body", "author", "created_at", "updated_at"]
        read_only_fields = fields


class MyReviewSerializer(serializers.ModelSerializer):
    """The signed-in user's own review, as the detail shows it (no author: it is the viewer)."""

    class Meta:
        model = Review
        fields = ["id", "rating", "title", "body", "is_hidden", "created_at", "updated_at"]
        read_only_fields = fields


# Keys "1".."5": the number of visible reviews per star rating, from the stored counters.
RatingDistributionSerializer = type(
    "RatingDistributionSerializer",
    (serializers.Serializer,),
    {str(r): serializers.IntegerField(read_only=True, min_value=0) for r in RATINGS},
)


def rating_distribution(agent) -> dict[str, int]:
    return {str(r): getattr(agent, f"ratings_{r}") for r in RATINGS}


class AgentDetailSerializer(AgentCardSerializer):
    homepage_url = fields.BlankableURLField(read_only=True)
    source_url = fields.BlankableURLField(read_only=True)
    rating_distribution = serializers.SerializerMethodField()
    recent_reviews = ReviewSerializer(many=True, read_only=True)
    is_installed = serializers.SerializerMethodField(
        help_text="Whether the signed-in user installed it; null when anonymous."
    )
    my_review = serializers.SerializerMethodField(
        help_text="The signed-in user's review of it, if any."
    )

    class Meta(AgentCardSerializer.Meta):
        fields = [
            *AgentCardSerializer.Meta.fields,
            *DETAIL_FIELDS,
            "rating_distribution",
            "recent_reviews",
            "is_installed",
            "my_review",
        ]
        read_only_fields = fields

    def _viewer(self):
        request = self.context.get("request")
        return request.user if request is not None else None

    @extend_schema_field(RatingDistributionSerializer)
    def get_rating_distribution(self, agent):
        return rating_distribution(agent)

    def get_is_installed(self, agent) -> bool | None:
        viewer = self._viewer()
        if viewer is None or not viewer.is_authenticated:
            return None
        return bool(agent.viewer_installed)

    @extend_schema_field(MyReviewSerializer(allow_null=True))
    def get_my_review(self, agent):
        reviews = getattr(agent, "viewer_reviews", None)
        return MyReviewSerializer(reviews[0]).data if reviews else None


class CategorySerializer(serializers.ModelSerializer):
    agent_count = serializers.IntegerField(read_only=True, help_text="Listed agents in it.")

    class Meta:
        model = Category
        fields = ["id", "slug", "name", "description", "agent_count"]
        read_only_fields = fields


# --- Search -------------------------------------------------------------------------------------


class FacetSerializer(serializers.Serializer):
    slug = serializers.SlugField(read_only=True)
    name = serializers.CharField(read_only=True)
    count = serializers.IntegerField(read_only=True)
    capped = serializers.BooleanField(
        read_only=True,
        help_text="More agents match than facets count (1,000): `count` is a lower bound.",
    )


class SearchPageSerializer(serializers.Serializer):
    """For the schema: a cursor page of results plus the category facets."""

    next = serializers.URLField(allow_null=True, read_only=True)
    previous = serializers.URLField(allow_null=True, read_only=True)
    results = SearchResultSerializer(many=True, read_only=True)
    facets = FacetSerializer(many=True, read_only=True)


# --- Installations and reviews -----------------------------------------------------------------


class InstallationSerializer(serializers.ModelSerializer):
    agent = AgentCardSerializer(read_only=True)

    class Meta:
        model = Installation
        fields = ["id", "agent", "installed_at"]
        read_only_fields = fields


class ReviewWriteSerializer(fields.StrictSerializer):
    rating = fields.IntegerField(min_value=1, max_value=5)
    title = fields.CharField(max_length=120, required=False, allow_blank=True, default="")
    body = fields.CharField(max_length=5000, required=False, allow_blank=True, default="")


class ReviewPatchSerializer(fields.StrictSerializer):
    rating = fields.IntegerField(min_value=1, max_value=5, required=False)
    title = fields.CharField(max_length=120, required=False, allow_blank=True)
    body = fields.CharField(max_length=5000, required=False, allow_blank=True)


# --- Stats -------------------------------------------------------------------------------------


class CategoryStatsSerializer(serializers.Serializer):
    slug = serializers.SlugField()
    name = serializers.CharField()
    agent_count = serializers.IntegerField()
    install_count = serializers.IntegerField()


class TopAgentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    slug = serializers.SlugField()
    name = serializers.CharField()
    category = CategoryRefSerializer()
    rating_average = serializers.FloatField()
    rating_count = serializers.IntegerField()
    install_count = serializers.IntegerField()


class StatsSerializer(serializers.Serializer):
    """marketplace.stats.marketplace_stats(), as is."""

    total_agents = serializers.IntegerField()
    active_agents = serializers.IntegerField()
    featured_agents = serializers.IntegerField()
    total_installations = serializers.IntegerField()
    total_reviews = serializers.IntegerField()
    average_rating = serializers.FloatField(allow_null=True)
    rating_distribution = RatingDistributionSerializer()
    categories = CategoryStatsSerializer(many=True)
    top_agents = TopAgentSerializer(many=True)


# --- Auth -----------------------------------------------------------------------------------------


class CredentialsSerializer(fields.StrictSerializer):
    username = fields.CharField(max_length=150)
    password = fields.CharField(max_length=4096, trim_whitespace=False)


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(read_only=True)
