from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from .managers import (
    AGENT_ORDERINGS,
    AgentQuerySet,
    CategoryQuerySet,
    InstallationQuerySet,
    ReviewQuerySet,
)

RATINGS = (1, 2, 3, 4, 5)


def rating_average(histogram) -> float:
    """The average of a rating histogram (counts of 1..5 stars, in order): sum of ratings /
    their number, 0.0 with none. The stored column's rule; services keeps it in SQL too."""
    count = sum(histogram)
    return sum(r * n for r, n in zip(RATINGS, histogram, strict=True)) / count if count else 0.0


def _listing_index(ordering: str) -> models.Index:
    """Active agents in a public ordering's (sort key, id) order: agent_active_<name>_idx."""
    field, direction = AGENT_ORDERINGS[ordering]
    sign = "-" if direction == "desc" else ""
    name = f"agent_active_{ordering.lstrip('-')}_idx"
    return models.Index(fields=[sign + field, f"{sign}id"], name=name, condition=Q(is_active=True))


class Category(models.Model):
    name = models.CharField(max_length=80, unique=True)
    slug = models.SlugField(max_length=80, unique=True)
    description = models.TextField(blank=True)
    position = models.PositiveSmallIntegerField(default=0)

    objects = CategoryQuerySet.as_manager()

    class Meta:
        ordering = ["position", "name"]
        verbose_name_plural = "categories"

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return f"{reverse('agent-list')}?category={self.slug}"


class Publisher(models.Model):
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=120, unique=True)
    website = models.URLField(blank=True)
    verified = models.BooleanField(default=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="publishers",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Agent(models.Model):
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=140, unique=True)
    tagline = models.CharField(max_length=200)
    description = models.TextField(blank=True, help_text="Markdown.")
    # FK lookups lead the composite indexes below, so no single-column index of their own.
    category = models.ForeignKey(
        Category, on_delete=models.PROTECT, related_name="agents", db_index=False
    )
    publisher = models.ForeignKey(
        Publisher, on_delete=models.PROTECT, related_name="agents", db_index=False
    )
    icon = models.ImageField(upload_to="icons/", blank=True)
    version = models.CharField(max_length=40, default="1.0.0")
    homepage_url = models.URLField(blank=True)
    source_url = models.URLField(blank=True)
    tags = models.JSONField(default=list, blank=True)
    is_active = models.BooleanField(default=True)
    is_featured = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    published_at = models.DateTimeField(null=True, blank=True)

    # Denormalised counters, written only by marketplace.services in the same transaction as
    # the rows they count; `manage.py recount` repairs drift. ratings_N counts the N-star
    # reviews, so the average and the histogram never need a COUNT over reviews.
    rating_average = models.FloatField(default=0.0)
    rating_count = models.PositiveIntegerField(default=0)
    install_count = models.PositiveIntegerField(default=0)
    ratings_1 = models.PositiveIntegerField(default=0)
    ratings_2 = models.PositiveIntegerField(default=0)
    ratings_3 = models.PositiveIntegerField(default=0)
    ratings_4 = models.PositiveIntegerField(default=0)
    ratings_5 = models.PositiveIntegerField(default=0)

    objects = AgentQuerySet.as_manager()

    class Meta:
        db_table = "marketplace_agents"
        ordering = ["-rating_average", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(rating_average__gte=0) & Q(rating_average__lte=5),
                name="agent_rating_average_0_5",
            ),
        ]
        indexes = [
            # The report's indexes, named as in the report.
            # Category listing sorted by rating; -id is the key-set tiebreaker.
            models.Index(
                fields=["category", "-rating_average", "-id"], name="idx_agents_category_rating"
            ),
            # Featured shelf: active featured agents.
            models.Index(fields=["is_active", "is_featured"], name="idx_agents_is_active_featured"),
            # ... and their default listing, by rating: the first page reads 21 index entries
            # instead of sorting every featured agent joined to every publisher.
            models.Index(
                fields=["-rating_average", "-id"],
                name="agent_featured_rating_idx",
                condition=Q(is_active=True, is_featured=True),
            ),
            # Listings over all active agents, one per ordering: (sort key, id) for the cursor.
            *(_listing_index(ordering) for ordering in AGENT_ORDERINGS),
            # Category listing by installs (the home page's "popular in category").
            models.Index(
                fields=["category", "-install_count", "-id"], name="agent_category_installs_idx"
            ),
            # Publisher filter.
            models.Index(
                fields=["publisher", "-rating_average", "-id"], name="agent_publisher_idx"
            ),
        ]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("agent-detail", kwargs={"slug": self.slug})

    @property
    def rating_distribution(self) -> dict[int, int]:
        return {r: getattr(self, f"ratings_{r}") for r in RATINGS}


class Installation(models.Model):
    # Both FK lookups lead a composite index below: no single-column indexes.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="installations",
        db_index=False,
    )
    agent = models.ForeignKey(
        Agent, on_delete=models.CASCADE, related_name="installations", db_index=False
    )
    installed_at = models.DateTimeField(default=timezone.now)

    objects = InstallationQuerySet.as_manager()

    class Meta:
        db_table = "agent_installations"
        ordering = ["-installed_at", "-id"]
        constraints = [
            # (agent, user): also serves per-agent lookups (cascades, recount), while the
            # report's (user, agent) index serves the per-user ones.
            models.UniqueConstraint(fields=["agent", "user"], name="installation_one_per_user"),
        ]
        indexes = [
            # The report's index: "is this agent installed for this user" lookups.
            models.Index(fields=["user", "agent"], name="idx_installations_user_agent"),
            # My installations, newest first, key-set on (installed_at, id).
            models.Index(fields=["user", "-installed_at", "-id"], name="install_user_recent_idx"),
        ]

    def __str__(self):
        return f"{self.user} installed {self.agent}"


class Review(models.Model):
    # Both FK lookups lead a composite index below: no single-column indexes.
    agent = models.ForeignKey(
        Agent, on_delete=models.CASCADE, related_name="reviews", db_index=False
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reviews", db_index=False
    )
    rating = models.PositiveSmallIntegerField()
    title = models.CharField(max_length=120, blank=True)
    body = models.TextField(blank=True, max_length=5000)
    is_hidden = models.BooleanField(default=False, help_text="Hidden by a moderator.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ReviewQuerySet.as_manager()

    class Meta:
        db_table = "agent_reviews"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["agent", "user"], name="review_one_per_user"),
            models.CheckConstraint(
                condition=Q(rating__gte=1) & Q(rating__lte=5), name="review_rating_1_5"
            ),
        ]
        indexes = [
            # The report's index: rating histogram and filters per agent.
            models.Index(fields=["agent", "rating"], name="idx_reviews_agent_rating"),
            # An agent's reviews, newest first, key-set on (created_at, id).
            models.Index(fields=["agent", "-created_at", "-id"], name="review_agent_recent_idx"),
            models.Index(fields=["user", "-created_at"], name="review_user_recent_idx"),
        ]

    def __str__(self):
        return f"{self.rating}★ {self.agent} by {self.user}"


STATS_SHARDS = 16  # rollup rows per category: agent id % STATS_SHARDS picks an agent's row


class CategoryStats(models.Model):
    """One stripe of a category's sums of agent counters: what marketplace.stats reads.

    Written only by the database triggers on marketplace_agents (migration 0005), in the
    transaction that changes an agent row, whatever path changed it: services, update(),
    the admin, COPY, raw SQL. Each category has up to STATS_SHARDS rows, one per agent id
    residue, so concurrent writes to different agents of one category rarely wait on the same
    row lock; readers sum the stripes. `manage.py recount` checks and rebuilds the table.
    """

    category = models.ForeignKey(
        Category, on_delete=models.CASCADE, related_name="stats", db_index=False
    )
    shard = models.PositiveSmallIntegerField()
    agents = models.BigIntegerField(default=0)
    active_agents = models.BigIntegerField(default=0)
    featured_agents = models.BigIntegerField(default=0, help_text="Active and featured.")
    installs = models.BigIntegerField(default=0)
    active_installs = models.BigIntegerField(default=0, help_text="Installs of active agents.")
    reviews = models.BigIntegerField(default=0, help_text="Sum of rating_count.")
    ratings_1 = models.BigIntegerField(default=0)
    ratings_2 = models.BigIntegerField(default=0)
    ratings_3 = models.BigIntegerField(default=0)
    ratings_4 = models.BigIntegerField(default=0)
    ratings_5 = models.BigIntegerField(default=0)

    class Meta:
        db_table = "marketplace_category_stats"
        verbose_name_plural = "category stats"
        constraints = [
            # The triggers' ON CONFLICT target; also serves the per-category lookups.
            models.UniqueConstraint(fields=["category", "shard"], name="category_stats_shard"),
        ]

    # The summed columns, for readers (stats) and the drift check (services).
    SUM_FIELDS = (
        "agents",
        "active_agents",
        "featured_agents",
        "installs",
        "active_installs",
        "reviews",
        *(f"ratings_{r}" for r in RATINGS),
    )

    def __str__(self):
        return f"{self.category_id}/{self.shard}"
