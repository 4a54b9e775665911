"""What every section measures against, picked from the bench data (deterministically)."""

import re
from collections import Counter
from dataclasses import asdict, dataclass

from django.contrib.auth import get_user_model
from django.db.models import Count, F, Q, Sum
from rest_framework.authtoken.models import Token

from marketplace.models import Agent, Category, Installation, Review

LOAD_USERS = 200
PAGE_SIZE = 20


@dataclass
class Fixture:
    category_slug: str  # the category with the most listed agents
    categories_by_popularity: list[str]
    agent_id: int  # the most installed listed agent: the hottest detail page
    agents_by_popularity: list[int]  # listed agents, most installed first
    user_id: int  # a user with at least a page of installations and knowledge entries
    token: str
    search_term: str  # a word matching about 1 % of the agents by name: a typical search
    broad_term: str  # the most frequent word: the widest search anyone would type
    search_terms: list[str]  # most frequent name words first, plus typo'd variants
    load_user_ids: list[int]
    load_tokens: list[str]

    def as_dict(self) -> dict:
        data = asdict(self)
        # Tokens are credentials of the bench data set: the results never carry them.
        data.pop("token")
        data.pop("load_tokens")
        data["agents_by_popularity"] = len(self.agents_by_popularity)
        data["load_user_ids"] = len(self.load_user_ids)
        return data


def _search_terms(names: list[str], limit: int = 40) -> list[str]:
    words = Counter(w for name in names for w in re.findall(r"[a-z]{5,}", name.lower()))
    common = [w for w, _ in words.most_common(limit)]
    # Typos as people make them: a letter dropped from a popular word.
    typos = [w[:2] + w[3:] for w in common[:3]]
    return common + typos


def build_fixture() -> Fixture:
    listed = Agent.objects.listed()
    agents = list(listed.order_by("-install_count", "id").values_list("id", "name"))
    if not agents:
        raise RuntimeError("the bench database has no listed agents: seeding failed?")
    by_agents = (
        Category.objects.filter(agents__is_active=True)
        .annotate(n=Count("agents"))
        .order_by("-n", "slug")
        .values_list("slug", flat=True)
    )
    by_installs = (
        Category.objects.annotate(n=Sum("agents__install_count", filter=Q(agents__is_active=True)))
        .order_by(F("n").desc(nulls_last=True), "slug")
        .values_list("slug", flat=True)
    )
    users = get_user_model().objects.order_by("id")
    heavy = (
        Installation.objects.values("user")
        .annotate(n=Count("id"))
        .filter(n__gte=PAGE_SIZE)
        .order_by("user")
        .values_list("user", flat=True)[:1]
    )
    user_id = next(iter(heavy), None) or users.values_list("id", flat=True).first()
    load_users = list(users.filter(is_staff=False).values_list("id", flat=True)[:LOAD_USERS])
    tokens = {
        t.user_id: t.key
        for t in (Token.objects.get_or_create(user_id=pk)[0] for pk in {user_id, *load_users})
    }
    terms = _search_terms([name for _, name in agents])
    # The typical search: the word whose name matches come closest to 1 % of the agents
    # (a specific need, "translator"), not the commonest word (which matches a fifth).
    target = max(1, len(agents) // 100)
    matches = {w: listed.filter(name__icontains=w).count() for w in terms[:40]}
    typical = min(matches, key=lambda w: (abs(matches[w] - target), w))
    return Fixture(
        category_slug=by_agents[0],
        categories_by_popularity=list(by_installs),
        agent_id=agents[0][0],
        agents_by_popularity=[pk for pk, _ in agents],
        user_id=user_id,
        token=tokens[user_id],
        search_term=typical,
        broad_term=terms[0],
        search_terms=terms,
        load_user_ids=load_users,
        load_tokens=[tokens[pk] for pk in load_users],
    )


def reviewed_pairs(user_ids) -> set[tuple[int, int]]:
    return set(Review.objects.filter(user_id__in=user_ids).values_list("user_id", "agent_id"))
