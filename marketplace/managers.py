"""QuerySets: every join, prefetch and annotation the app runs is named here."""

import json
import math

from django.db import models
from django.db.models import Count, F, FloatField, Lookup, Prefetch, Value
from django.db.models.functions import Cast, Greatest, Least, Ln

from aios.statements import Shape, Slot, lookup_param


@models.JSONField.register_lookup
class HasElement(Lookup):
    """`tags__has_element="x"`: the JSON list contains the string "x", on both backends."""

    lookup_name = "has_element"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        if connection.vendor == "postgresql":
            # jsonb @> '["x"]', which the GIN index on tags serves.
            tags = lookup_param(self.rhs, lambda tag: json.dumps([tag]))
            return f"{lhs} @> %s::jsonb", [*lhs_params, tags]
        return (
            f"EXISTS (SELECT 1 FROM json_each({lhs}) WHERE json_each.value = %s)",  # noqa: S608
            [*lhs_params, lookup_param(self.rhs, str)],
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
CARD_VALUES = tuple(
    name for name in CARD_FIELDS if name not in ("is_active", "category__id", "publisher__id")
)
# Columns a detail page adds to a card (the API's detail serializer lists them too).
DETAIL_FIELDS = ("description", "version", "homepage_url", "source_url", "tags", "published_at")
DETAIL_VALUES = (
    *CARD_VALUES,
    *DETAIL_FIELDS,
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

RATING_PRIOR, RATING_PRIOR_WEIGHT = 3.5, 5.0
INSTALLS_SCALE = math.log(100_001)  # log installs reaches 1 at 100k installs


def quality():
    """Search's quality factor: 1.0 for a top-rated, much-installed agent, 0.6 for an unknown one.

    The one definition: search ranks by it, and migration 0007 compiles it into PostgreSQL's
    generated column `search_quality`, so changing it takes a migration that re-creates that
    column. Greatest: a negative count must fail the table's CHECK, not the logarithm first.
    """
    bayes = (
        Cast(F("rating_average"), FloatField()) * F("rating_count")
        + Value(RATING_PRIOR * RATING_PRIOR_WEIGHT)
    ) / (Cast(F("rating_count"), FloatField()) + Value(RATING_PRIOR_WEIGHT))
    installs = Least(
        Ln(Cast(Greatest(F("install_count"), Value(0)), FloatField()) + Value(1.0))
        / Value(INSTALLS_SCALE),
        Value(1.0),
    )
    return Value(0.6) + Value(0.25) * bayes / Value(5.0) + Value(0.15) * installs


RECENT_REVIEWS = 5


def _installed_by(user):
    """EXISTS: `user` (or a Slot for one's id) installed the outer agent."""
    from .models import Installation

    return models.Exists(Installation.objects.filter(user=user, agent=models.OuterRef("pk")))


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

            # One `LIMIT 5` per agent on review_agent_recent_idx (bench.inprocess -n 100: the
            # 14k-review agent's page 0.028x the floor; 0.005x with a sliced Prefetch, which
            # ranks all its reviews in a window function). Detail pages fetch one agent.
            for agent in self._result_cache:
                if isinstance(agent, models.Model):
                    agent.recent_reviews = list(Review.objects.for_agent(agent)[:RECENT_REVIEWS])

    def listed(self):
        """Agents visitors may see."""
        return self.filter(is_active=True)

    def filtered(self, *, category=None, featured=None, publisher=None, tag=None, min_rating=None):
        """listed() agents narrowed by each filter given (None: not given): a category or
        publisher slug, featured or not, a tag, a lowest rating. The API and the pages use it."""
        agents = self.listed()
        if category is not None:
            agents = agents.in_category(category)
        if featured is not None:
            agents = agents.filter(is_featured=featured)
        if publisher is not None:
            agents = agents.by_publisher(publisher)
        if tag is not None:
            agents = agents.with_tag(tag)
        if min_rating is not None:
            agents = agents.min_rating(min_rating)
        return agents

    def for_cards(self):
        """Everything a list card shows, in one query; counters are stored, not counted."""
        return self.select_related("category", "publisher").only(*CARD_FIELDS)

    def card_rows(self, *extra: str):
        """for_cards() as values() rows (plus the `extra` annotations), in one query."""
        return self.values(*CARD_VALUES, *extra)

    def card_shape(self, **filters) -> Shape:
        """filtered(**filters) as card_rows(), as one statement per combination of filters."""
        given = {name: value for name, value in filters.items() if value is not None}
        # `featured` goes in the key: a literal boolean lets the planner pick a partial index.
        featured = given.pop("featured", None)
        agents, field = type(self), self.model._meta.get_field

        def build():
            slots = {name: Slot(name) for name in given}
            if "min_rating" in slots:
                slots["min_rating"] = Slot("min_rating", field("rating_average"))
            return agents(self.model).filtered(featured=featured, **slots).card_rows()

        return Shape(("agent-cards", featured, *sorted(given)), build, self.model, **given)

    def card_row_shape(self, pk: int) -> Shape:
        """The agent `pk`, listed or not, as card_rows()."""
        agents, pk_field = type(self), self.model._meta.pk

        def build():
            return agents(self.model).filter(pk=Slot("pk", pk_field)).card_rows()

        return Shape(("agent-card",), build, self.model, pk=pk)

    def detail_shape(self, pk: int, user) -> Shape:
        """The listed agent `pk` as detail_rows(user): no row when it is not listed."""
        signed_in = user.is_authenticated
        agents = type(self)
        viewer = Slot("user") if signed_in else user

        def build():
            pk_field = self.model._meta.pk
            return agents(self.model).listed().filter(pk=Slot("pk", pk_field)).detail_rows(viewer)

        values = {"pk": pk, "user": user.pk} if signed_in else {"pk": pk}
        return Shape(("agent-detail", signed_in), build, self.model, **values)

    def detail_rows(self, user):
        """A detail page's agent columns as values() rows, with `viewer_installed` (an EXISTS
        for a signed-in user, or a Slot for one's id); its reviews come from
        ReviewQuerySet.for_agent(...).rows()."""
        if not isinstance(user, Slot) and not user.is_authenticated:
            return self.values(*DETAIL_VALUES)
        return self.values(*DETAIL_VALUES, viewer_installed=_installed_by(user))

    def listed_shape(self, pk: int) -> Shape:
        """[{"id": pk}] when the agent `pk` is listed, else []."""
        agents, pk_field = type(self), self.model._meta.pk

        def build():
            return agents(self.model).listed().filter(pk=Slot("pk", pk_field)).values("id")[:1]

        return Shape(("agent-listed",), build, self.model, pk=pk)

    def for_detail(self):
        """A card plus the full text and links; each agent fetched gets `recent_reviews`,
        its five latest visible reviews (one indexed query per agent: for detail pages)."""
        clone = self.select_related("category", "publisher")
        clone._with_recent_reviews = True
        return clone

    def for_viewer(self, user):
        """Adds `viewer_installed` (bool) and `viewer_reviews` ([the user's review] or []):
        the pages' viewer state, as detail_rows() and ReviewQuerySet.own_shape() give the API's."""
        from .models import Review

        if not user.is_authenticated:
            return self.annotate(viewer_installed=models.Value(False))
        return self.annotate(viewer_installed=_installed_by(user)).prefetch_related(
            Prefetch("reviews", queryset=Review.objects.by(user), to_attr="viewer_reviews")
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

    def card_shape(self, user) -> Shape:
        """for_user(user).card_rows() as one statement."""
        installations = type(self)

        def build():
            return installations(self.model).for_user(Slot("user")).card_rows()

        return Shape(("installation-cards",), build, self.model, user=user.pk)


class ReviewQuerySet(models.QuerySet):
    def visible(self):
        return self.filter(is_hidden=False)

    def by(self, user):
        """The reviews `user` wrote, hidden ones too (one per agent)."""
        return self.filter(user=user)

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

    def agent_shape(self, agent_id: int) -> Shape:
        """for_agent(agent_id).rows() as one statement: the agent's visible reviews."""
        reviews = type(self)

        def build():
            return reviews(self.model).for_agent(Slot("agent")).rows()

        return Shape(("agent-reviews",), build, self.model, agent=agent_id)

    def own_shape(self, agent_id: int, user) -> Shape:
        """The own_rows() of `user`'s review of the agent, as one statement."""
        reviews = type(self)

        def build():
            return reviews(self.model).filter(agent_id=Slot("agent")).by(Slot("user")).own_rows()

        return Shape(("own-review",), build, self.model, agent=agent_id, user=user.pk)
