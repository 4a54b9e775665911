"""QuerySets: every join, prefetch and annotation the app runs is named here."""

import json

from django.db import models
from django.db.models import Count, Lookup, Prefetch


@models.JSONField.register_lookup
class HasElement(Lookup):
    """`tags__has_element="x"`: the JSON list contains the string "x", on both backends."""

    lookup_name = "has_element"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        if connection.vendor == "postgresql":
            # jsonb @> '["x"]', which the GIN index on tags serves.
            return f"{lhs} @> %s::jsonb", [*lhs_params, json.dumps([self.rhs])]
        return (
            f"EXISTS (SELECT 1 FROM json_each({lhs}) WHERE json_each.value = %s)",  # noqa: S608
            [*lhs_params, self.rhs],
        )


# Columns a card shows (lists, search, featured); detail pages add the rest.
CARD_FIELDS = (
    "id",
    "slug",
    "name",
    "tagline",
    "icon",
    "rating_average",
    "rating_count",
    "install_count",
    "is_featured",
    "is_active",
    "created_at",
    "updated_at",
    "category__id",
    "category__slug",
    "category__name",
    "publisher__id",
    "publisher__slug",
    "publisher__name",
    "publisher__verified",
)

# A card's values() names: the lean read paths render these rows without model instances
# (marketplace/api/lean.py). Foreign keys are never null, so the joins stay inner joins.
CARD_VALUES = (
    "id",
    "slug",
    "name",
    "tagline",
    "icon",
    "rating_average",
    "rating_count",
    "install_count",
    "is_featured",
    "created_at",
    "updated_at",
    "category__slug",
    "category__name",
    "publisher__slug",
    "publisher__name",
    "publisher__verified",
)
DETAIL_VALUES = (
    *CARD_VALUES,
    "description",
    "version",
    "homepage_url",
    "source_url",
    "tags",
    "published_at",
    *(f"ratings_{r}" for r in range(1, 6)),  # models.RATINGS: models imports this module
)
REVIEW_VALUES = ("id", "agent_id", "rating", "title", "body", "created_at", "updated_at")
AUTHOR_VALUES = ("user__username", "user__first_name", "user__last_name")

# Public ordering names -> (sort field, direction). The cursor pages on (sort field, id).
AGENT_ORDERINGS = {
    "-rating": ("rating_average", "desc"),
    "-installs": ("install_count", "desc"),
    "-created": ("created_at", "desc"),
    "-updated": ("updated_at", "desc"),
    "name": ("name", "asc"),
}
DEFAULT_AGENT_ORDERING = "-rating"


RECENT_REVIEWS = 5


class AgentQuerySet(models.QuerySet):
    _with_recent_reviews = False

    def _clone(self):
        clone = super()._clone()
        clone._with_recent_reviews = self._with_recent_reviews
        return clone

    def _fetch_all(self):
        fetched = self._result_cache is not None
        super()._fetch_all()
        if self._with_recent_reviews and not fetched:
            from .models import Review

            # One `LIMIT 5` per agent on review_agent_recent_idx. A sliced Prefetch would
            # instead rank every review of the agent with a window function: ~20 ms for an
            # agent with 14k reviews. Detail pages fetch one agent, so this is one query.
            for agent in self._result_cache:
                if isinstance(agent, models.Model):
                    agent.recent_reviews = list(Review.objects.for_agent(agent)[:RECENT_REVIEWS])

    def listed(self):
        """Agents visitors may see."""
        return self.filter(is_active=True)

    def for_cards(self):
        """Everything a list card shows, in one query; counters are stored, not counted."""
        return self.select_related("category", "publisher").only(*CARD_FIELDS)

    def card_rows(self, *extra: str):
        """for_cards() as values() rows (plus the `extra` annotations), in one query."""
        return self.values(*CARD_VALUES, *extra)

    def detail_rows(self, user):
        """A detail page's agent columns as values() rows, with `viewer_installed` (an EXISTS
        for a signed-in user); its reviews come from ReviewQuerySet.for_agent(...).rows()."""
        from .models import Installation

        if not user.is_authenticated:
            return self.values(*DETAIL_VALUES)
        installed = models.Exists(
            Installation.objects.filter(user=user, agent=models.OuterRef("pk"))
        )
        return self.values(*DETAIL_VALUES, viewer_installed=installed)

    def for_detail(self):
        """A card plus the full text and links; each agent fetched gets `recent_reviews`,
        its five latest visible reviews (one indexed query per agent: for detail pages)."""
        clone = self.select_related("category", "publisher")
        clone._with_recent_reviews = True
        return clone

    def for_viewer(self, user):
        """Adds `viewer_installed` (bool) and `viewer_reviews` ([the user's review] or [])."""
        from .models import Installation, Review

        if not user.is_authenticated:
            return self.annotate(viewer_installed=models.Value(False))
        return self.annotate(
            viewer_installed=models.Exists(
                Installation.objects.filter(user=user, agent=models.OuterRef("pk"))
            )
        ).prefetch_related(
            Prefetch("reviews", queryset=Review.objects.filter(user=user), to_attr="viewer_reviews")
        )

    def featured(self):
        return self.listed().filter(is_featured=True)

    def in_category(self, slug: str):
        return self.filter(category__slug=slug)

    def by_publisher(self, slug: str):
        return self.filter(publisher__slug=slug)

    def with_tag(self, tag: str):
        return self.filter(tags__has_element=tag)

    def min_rating(self, value: float):
        return self.filter(rating_average__gte=value)

    def count_by_category(self):
        """{category__slug, category__name, count} per category of these agents, in menu order."""
        return (
            self.order_by()
            .values("category__slug", "category__name")
            .annotate(count=Count("id"))
            .order_by("category__position", "category__name")
        )

    def ordered(self, ordering: str = DEFAULT_AGENT_ORDERING):
        """Sort by a public ordering name, with id as the tiebreaker the cursor relies on."""
        field, direction = AGENT_ORDERINGS[ordering]
        if direction == "desc":
            return self.order_by(f"-{field}", "-id")
        return self.order_by(field, "id")


class CategoryQuerySet(models.QuerySet):
    def with_agent_counts(self):
        """Adds `agent_count`: the category's listed agents (one GROUP BY, no per-row query)."""
        return self.annotate(
            agent_count=Count("agents", filter=models.Q(agents__is_active=True))
        ).only("id", "slug", "name", "description", "position")


class InstallationQuerySet(models.QuerySet):
    def for_user(self, user):
        return self.filter(user=user)

    def with_agent_cards(self):
        """Installations with the card of their agent, in one query."""
        return self.select_related("agent__category", "agent__publisher").order_by(
            "-installed_at", "-id"
        )

    def with_agent_card_fields(self):
        """As with_agent_cards, reading only the columns an installation and a card show."""
        return self.select_related("agent__category", "agent__publisher").only(
            "id", "user_id", "installed_at", *(f"agent__{f}" for f in CARD_FIELDS)
        )

    def card_rows(self):
        """with_agent_card_fields() as values() rows: the installation's id and installed_at,
        its agent's card under `agent__`, in one query."""
        return self.values("id", "installed_at", *(f"agent__{f}" for f in CARD_VALUES))


class ReviewQuerySet(models.QuerySet):
    def visible(self):
        return self.filter(is_hidden=False)

    def with_author(self):
        return self.select_related("user").only(
            "id",
            "agent_id",
            "rating",
            "title",
            "body",
            "is_hidden",
            "created_at",
            "updated_at",
            "user__id",
            "user__username",
            "user__first_name",
            "user__last_name",
        )

    def for_agent(self, agent):
        return self.filter(agent=agent).visible().with_author().order_by("-created_at", "-id")

    def rows(self):
        """with_author() as values() rows (the author's names under `user__`)."""
        return self.values(*REVIEW_VALUES, *AUTHOR_VALUES)

    def own_rows(self):
        """The columns of a user's own review (no author: it is the viewer)."""
        return self.values(*REVIEW_VALUES, "is_hidden")
