"""The plan of a demo data set: how many rows of each kind, and what each publisher and agent is.

Per-agent counters (installs, rating histogram, count, average) are planned before any row is
written and stored with the agents, so they match the rows without a recount pass. Only
per-agent and per-user plans are held (a few numbers each), so memory stays bounded at any
scale; rows.py streams the installations and reviews (and knowledge/demo.py the entries).
"""

import bisect
import itertools
import random
from array import array
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.core.management.base import CommandError
from django.utils.text import slugify

from marketplace.demo import vocabulary

# Demo credentials, printed at the end of every seed. Local demo data only.
DEMO_PASSWORD = "aios-demo"  # noqa: S105  every generated user and `demo`
ADMIN_PASSWORD = "aios-admin"  # noqa: S105  the staff account `admin`
DEMO_EMAIL_DOMAIN = "demo.aios.example"  # marks demo users: `--replace` deletes only these

# Timestamps are spread over the two years before a fixed instant, not before "now", so a
# seed run today and one run next month produce identical rows.
ANCHOR = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp())
DAY = 86_400
SPAN = 730 * DAY

# Zipf-Mandelbrot popularity: an agent of rank r gets a share proportional to 1/(r+Q)^S.
ZIPF_S, ZIPF_Q = 1.25, 4
MAX_INSTALL_SHARE = 0.8  # no agent is installed by more than this share of the users
INACTIVE_SHARE, FEATURED_SHARE, HIDDEN_REVIEW_SHARE = 0.03, 0.02, 0.01
DEMO_INSTALLS, DEMO_REVIEWS = 12, 5


@dataclass(frozen=True)
class Shape:
    agents: int
    users: int  # including the `admin` and `demo` accounts
    installations: int
    reviews: int
    knowledge: int  # entries knowledge/demo.py adds
    publishers: int


SMALL = Shape(
    agents=200, users=300, installations=3_000, reviews=1_000, knowledge=1_000, publishers=40
)
BENCH = Shape(
    agents=10_000,
    users=100_000,
    installations=1_000_000,
    reviews=250_000,
    knowledge=500_000,
    publishers=1_250,
)
MIN_AGENTS = 20


def shape_for(scale: str) -> Shape:
    """`small`, `bench`, or N agents with every other table in bench proportion."""
    if scale == "small":
        return SMALL
    if scale == "bench":
        return BENCH
    try:
        agents = int(scale)
    except ValueError:
        raise CommandError(
            f"--scale must be small, bench or a number of agents, not {scale!r}"
        ) from None
    if agents < MIN_AGENTS:
        raise CommandError(f"--scale N needs at least {MIN_AGENTS} agents, got {agents}.")
    factor = agents / BENCH.agents
    return Shape(
        agents=agents,
        users=round(BENCH.users * factor),
        installations=round(BENCH.installations * factor),
        reviews=round(BENCH.reviews * factor),
        knowledge=round(BENCH.knowledge * factor),
        publishers=max(5, round(BENCH.publishers * factor)),
    )


def allocate(total: int, weights: list[float], cap: int) -> list[int]:
    """Split `total` into integers proportional to `weights`, none above `cap`, summing exactly.

    Shares above the cap are clipped and the rest is spread again over the others; the
    rounding goes by largest remainder, so the result is deterministic.
    """
    if total > cap * len(weights):
        raise CommandError(f"cannot spread {total} rows over {len(weights)} agents")
    counts = [0] * len(weights)
    free = [i for i, w in enumerate(weights) if w > 0]
    remaining = total
    while True:
        weight_sum = sum(weights[i] for i in free)
        over = {i for i in free if remaining * weights[i] / weight_sum > cap}
        if not over:
            break
        for i in over:
            counts[i] = cap
        remaining -= cap * len(over)
        free = [i for i in free if i not in over]
    exact = {i: remaining * weights[i] / weight_sum for i in free}
    for i, x in exact.items():
        counts[i] = int(x)
    leftover = remaining - sum(counts[i] for i in free)
    for i in sorted(free, key=lambda i: (int(exact[i]) - exact[i], i))[:leftover]:
        counts[i] += 1
    return counts


def between(rng: random.Random, lo: int, hi: int) -> int:
    """A timestamp in [lo, hi), or lo when the range is empty."""
    return lo + int(rng.random() * (hi - lo)) if hi > lo else lo


def datetime_at(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


@dataclass
class AgentPlan:
    name: str
    slug: str
    category: int  # index into vocabulary.CATEGORIES
    publisher: int  # index into Plan.publisher_names
    quality: float  # the mean of its ratings
    created: int
    published: int | None
    updated: int
    is_active: bool
    installs: int = 0
    reviews: int = 0
    histogram: tuple = (0, 0, 0, 0, 0)  # visible reviews per rating 1..5
    hidden: tuple = ()  # ratings of hidden reviews
    is_featured: bool = False
    demo_installs: bool = False
    demo_reviews: bool = False


@dataclass
class Plan:
    """What is drawn before any row is written, and the random stream the rows continue."""

    shape: Shape
    seed: int
    first: dict[str, int]  # the first id of each table ("user", "agent", ...): explicit ids
    with_admin: bool
    with_demo: bool
    rng: random.Random  # planning draws from it first, then the user, publisher and agent rows
    publisher_names: list[str] = field(default_factory=list)
    agents: list[AgentPlan] = field(default_factory=list)
    agent_cum_weights: list[float] = field(default_factory=list)  # popularity, cumulative
    joined: array = field(default_factory=lambda: array("q"))  # filled by the user rows

    @property
    def generated_users(self) -> int:
        return self.shape.users - 2

    @property
    def demo_id(self) -> int | None:
        return self.first["user"] + 1 if self.with_demo else None


def make_plan(shape: Shape, seed: int, *, first_ids: dict, admin: bool, demo: bool) -> Plan:
    """Draw the publishers, the agents and their counters, and the demo user's picks."""
    rng = random.Random(seed)
    plan = Plan(shape, seed, first_ids, with_admin=admin, with_demo=demo, rng=rng)
    plan.publisher_names = _publisher_names(rng, shape.publishers)
    plan.agents = _agents(rng, shape)
    plan.agent_cum_weights = _plan_counts(rng, plan.agents, shape, plan.generated_users)
    _pick_featured(rng, plan.agents)
    if demo:
        _pick_demo_activity(rng, plan.agents)
    return plan


def _publisher_names(rng: random.Random, count: int) -> list[str]:
    first, second = vocabulary.PUBLISHER_FIRST, vocabulary.PUBLISHER_SECOND
    names, used = [], set()
    for _ in range(count):
        name = None
        for attempt in range(40):
            parts = [rng.choice(first)]
            if attempt > 3 or rng.random() < 0.3:
                parts.append(rng.choice(first))
            parts.append(rng.choice(second))
            candidate = " ".join(dict.fromkeys(parts))
            if slugify(candidate) not in used:
                name = candidate
                break
        name = name or _numbered(candidate, used)
        used.add(slugify(name))
        names.append(name)
    return names


def _numbered(name: str, used_slugs: set) -> str:
    n = 2
    while slugify(f"{name} {n}") in used_slugs:
        n += 1
    return f"{name} {n}"


def _agents(rng: random.Random, shape: Shape) -> list[AgentPlan]:
    categories = vocabulary.CATEGORIES
    cum_weights = list(itertools.accumulate(vocab.weight for vocab in categories))
    agents, used = [], set()
    for _ in range(shape.agents):
        category = bisect.bisect(cum_weights, rng.random() * cum_weights[-1])
        name = _agent_name(rng, categories[category], used)
        used.add(slugify(name))
        created = ANCHOR - between(rng, 14 * DAY, SPAN)
        is_active = rng.random() >= INACTIVE_SHARE
        published = created + between(rng, 0, 10 * DAY)
        if not is_active and rng.random() < 0.5:
            published = None  # withdrawn before it was ever published
        updated = between(rng, published or created, ANCHOR - DAY)
        agents.append(
            AgentPlan(
                name=name,
                slug=slugify(name),
                category=category,
                # Big publishers ship many agents: skew towards the first ones.
                publisher=int(shape.publishers * rng.random() ** 1.6),
                quality=min(4.9, max(1.6, rng.gauss(3.9, 0.55))),
                created=created,
                published=published,
                updated=updated,
                is_active=is_active,
            )
        )
    return agents


def _agent_name(rng: random.Random, vocab: vocabulary.CategoryVocab, used_slugs: set) -> str:
    name = ""
    for attempt in range(12):
        # The head noun ("Translator", "Invoice") is the most common, so searching for
        # it finds a cluster of agents.
        noun = vocab.nouns[0] if rng.random() < 0.3 else rng.choice(vocab.nouns)
        words = [noun, rng.choice(vocabulary.ROLES)]
        if attempt >= 2 or rng.random() < 0.6:
            words.insert(0, rng.choice(vocabulary.QUALIFIERS))
        if attempt >= 5:  # the plain combinations of this category are running out
            words.append(rng.choice(vocabulary.EDITIONS))
        name = " ".join(words)
        if slugify(name) not in used_slugs:
            return name
    return _numbered(name, used_slugs)


def _plan_counts(rng, agents: list[AgentPlan], shape: Shape, users: int) -> list[float]:
    """Give each agent its installs and reviews by Zipf popularity, and draw its ratings.

    Returns the cumulative popularity weights, for drawing agents as popular as they are.
    """
    ranks = list(range(1, len(agents) + 1))
    rng.shuffle(ranks)
    weights = [1 / (rank + ZIPF_Q) ** ZIPF_S for rank in ranks]
    cap = max(1, int(users * MAX_INSTALL_SHARE))
    installs = allocate(shape.installations, weights, cap)
    reviews = allocate(shape.reviews, [float(n) for n in installs], cap)
    for plan, n_installs, n_reviews in zip(agents, installs, reviews, strict=True):
        plan.installs, plan.reviews = n_installs, min(n_reviews, n_installs)
        histogram, hidden = [0] * 5, []
        for _ in range(plan.reviews):
            if rng.random() < HIDDEN_REVIEW_SHARE:
                hidden.append(rng.choice((1, 5)))  # spam either way: hidden by moderators
            else:
                rating = min(5, max(1, round(rng.gauss(plan.quality, 0.85))))
                histogram[rating - 1] += 1
        plan.histogram, plan.hidden = tuple(histogram), tuple(hidden)
    return list(itertools.accumulate(weights))


def _pick_featured(rng: random.Random, agents: list[AgentPlan]) -> None:
    active = [i for i, plan in enumerate(agents) if plan.is_active and plan.published]
    featured = min(len(active), max(1, round(len(agents) * FEATURED_SHARE)))
    for i in rng.sample(active, featured):
        agents[i].is_featured = True


def _pick_demo_activity(rng: random.Random, agents: list[AgentPlan]) -> None:
    """The `demo` user installs a dozen popular agents and reviews a few of them."""
    popular = sorted(
        (i for i, plan in enumerate(agents) if plan.is_active and plan.installs),
        key=lambda i: (-agents[i].installs, i),
    )[: DEMO_INSTALLS * 5]
    chosen = rng.sample(popular, min(DEMO_INSTALLS, len(popular)))
    for i in chosen:
        agents[i].demo_installs = True
    reviewable = [i for i in chosen if sum(agents[i].histogram)]
    for i in reviewable[:DEMO_REVIEWS]:
        agents[i].demo_reviews = True
