"""`manage.py seed_demo --scale small|bench|N`: a deterministic, realistic demo data set.

The same scale and seed always give the same rows. Rows are generated in Python and streamed
to the database: COPY on PostgreSQL, large `executemany` batches on SQLite. Per-agent counters
(installs, rating histogram, count, average) are planned before any row is written and stored
with the agents, so they match the rows without a recount pass; the database triggers on the
agent table sum them into the per-category rollup (CategoryStats) as the agents are written.

Memory stays bounded at any scale: only per-agent and per-user plans are held (a few numbers
each); installations, reviews and knowledge entries are streamed. Installations and reviews
are drawn from one random stream per agent, so the review pass can replay an agent's
installers instead of keeping a million of them in memory.
"""

import bisect
import contextlib
import json
import random
import sys
import time
from array import array
from dataclasses import dataclass
from datetime import UTC, datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError
from django.core.management.color import no_style
from django.db import connection, transaction
from django.utils.text import slugify
from tqdm import tqdm

from knowledge.models import KnowledgeEntry
from marketplace import caching, icons
from marketplace.demo import vocabulary as demo_data
from marketplace.models import Agent, Category, CategoryStats, Installation, Publisher, Review

User = get_user_model()

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
KNOWLEDGE_TYPES = (("note", 35), ("document", 15), ("link", 25), ("snippet", 15), ("faq", 10))
DEMO_INSTALLS, DEMO_REVIEWS = 12, 5


@dataclass(frozen=True)
class Shape:
    agents: int
    users: int  # including the `admin` and `demo` accounts
    installations: int
    reviews: int
    knowledge: int
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


def _when(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _between(rng: random.Random, lo: int, hi: int) -> int:
    return lo + int(rng.random() * (hi - lo)) if hi > lo else lo


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


@dataclass
class AgentPlan:
    name: str
    slug: str
    category: int
    publisher: int
    quality: float
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


class Seeder:
    """Plans a data set for a shape and seed, then streams it table by table."""

    def __init__(self, shape: Shape, seed: int, *, write, first_ids: dict, admin: bool, demo: bool):
        self.shape, self.seed, self.write = shape, seed, write
        self.rng = random.Random(seed)
        self.first = first_ids  # the first id of each table; rows carry explicit ids
        self.with_admin, self.with_demo = admin, demo
        self.generated_users = shape.users - 2
        self.demo_id = self.first["user"] + 1 if self.with_demo else None
        self.categories = demo_data.CATEGORIES
        self.publisher_names: list[str] = []
        self.publisher_names_seen: set[str] = set()
        self.agents: list[AgentPlan] = []
        self.agent_cum_weights: list[float] = []
        self.joined = array("q")  # date_joined of each generated user, as a timestamp

    # --- planning ---------------------------------------------------------------------------

    def plan(self) -> None:
        self._plan_publishers()
        self._plan_agents()
        self._plan_counts()
        self._plan_demo()

    def _plan_publishers(self) -> None:
        rng, used = self.rng, set()
        first, second = demo_data.PUBLISHER_FIRST, demo_data.PUBLISHER_SECOND
        for _ in range(self.shape.publishers):
            name = None
            for attempt in range(40):
                parts = [rng.choice(first)]
                if attempt > 3 or rng.random() < 0.3:
                    parts.append(rng.choice(first))
                parts.append(rng.choice(second))
                candidate = " ".join(dict.fromkeys(parts))
                if candidate not in self.publisher_names_seen and slugify(candidate) not in used:
                    name = candidate
                    break
            name = name or self._numbered(candidate, used)
            used.add(slugify(name))
            self.publisher_names_seen.add(name)
            self.publisher_names.append(name)

    @staticmethod
    def _numbered(name: str, used_slugs: set) -> str:
        n = 2
        while slugify(f"{name} {n}") in used_slugs:
            n += 1
        return f"{name} {n}"

    def _plan_agents(self) -> None:
        rng, shape, names, used = self.rng, self.shape, set(), set()
        cum_weights = []
        total = 0
        for vocab in self.categories:
            total += vocab.weight
            cum_weights.append(total)
        publishers = shape.publishers
        for _ in range(shape.agents):
            category = bisect.bisect(cum_weights, rng.random() * total)
            name = self._agent_name(rng, self.categories[category], names, used)
            names.add(name)
            used.add(slugify(name))
            created = ANCHOR - _between(rng, 14 * DAY, SPAN)
            is_active = rng.random() >= INACTIVE_SHARE
            published = created + _between(rng, 0, 10 * DAY)
            if not is_active and rng.random() < 0.5:
                published = None  # withdrawn before it was ever published
            updated = _between(rng, published or created, ANCHOR - DAY)
            self.agents.append(
                AgentPlan(
                    name=name,
                    slug=slugify(name),
                    category=category,
                    # Big publishers ship many agents: skew towards the first ones.
                    publisher=int(publishers * rng.random() ** 1.6),
                    quality=min(4.9, max(1.6, rng.gauss(3.9, 0.55))),
                    created=created,
                    published=published,
                    updated=updated,
                    is_active=is_active,
                )
            )

    @staticmethod
    def _agent_name(rng, vocab, used_names: set, used_slugs: set) -> str:
        name = ""
        for attempt in range(12):
            # The head noun ("Translator", "Invoice") is the most common, so searching for
            # it finds a cluster of agents.
            noun = vocab.nouns[0] if rng.random() < 0.3 else rng.choice(vocab.nouns)
            words = [noun, rng.choice(demo_data.ROLES)]
            if attempt >= 2 or rng.random() < 0.6:
                words.insert(0, rng.choice(demo_data.QUALIFIERS))
            if attempt >= 5:  # the plain combinations of this category are running out
                words.append(rng.choice(demo_data.EDITIONS))
            name = " ".join(words)
            if name not in used_names and slugify(name) not in used_slugs:
                return name
        return Seeder._numbered(name, used_slugs)

    def _plan_counts(self) -> None:
        rng, shape, agents = self.rng, self.shape, self.agents
        ranks = list(range(1, len(agents) + 1))
        rng.shuffle(ranks)
        weights = [1 / (rank + ZIPF_Q) ** ZIPF_S for rank in ranks]
        cap = max(1, int(self.generated_users * MAX_INSTALL_SHARE))
        installs = allocate(shape.installations, weights, cap)
        reviews = allocate(shape.reviews, [float(n) for n in installs], cap)
        running = 0.0
        for plan, weight, n_installs, n_reviews in zip(
            agents, weights, installs, reviews, strict=True
        ):
            running += weight
            self.agent_cum_weights.append(running)
            plan.installs, plan.reviews = n_installs, min(n_reviews, n_installs)
            histogram, hidden = [0] * 5, []
            for _ in range(plan.reviews):
                if rng.random() < HIDDEN_REVIEW_SHARE:
                    hidden.append(rng.choice((1, 5)))  # spam either way: hidden by moderators
                else:
                    rating = min(5, max(1, round(rng.gauss(plan.quality, 0.85))))
                    histogram[rating - 1] += 1
            plan.histogram, plan.hidden = tuple(histogram), tuple(hidden)
        active = [i for i, plan in enumerate(agents) if plan.is_active and plan.published]
        featured = min(len(active), max(1, round(len(agents) * FEATURED_SHARE)))
        for i in rng.sample(active, featured):
            agents[i].is_featured = True

    def _plan_demo(self) -> None:
        if not self.with_demo:
            return
        popular = sorted(
            (i for i, p in enumerate(self.agents) if p.is_active and p.installs),
            key=lambda i: (-self.agents[i].installs, i),
        )[: DEMO_INSTALLS * 5]
        chosen = self.rng.sample(popular, min(DEMO_INSTALLS, len(popular)))
        for i in chosen:
            self.agents[i].demo_installs = True
        reviewable = [i for i in chosen if sum(self.agents[i].histogram)]
        for i in reviewable[:DEMO_REVIEWS]:
            self.agents[i].demo_reviews = True

    # --- writing ----------------------------------------------------------------------------

    def run(self) -> None:
        self.plan()
        users = self.generated_users + self.with_admin + self.with_demo
        self.write("users", self._user_table(), users)
        self.write("categories", self._category_table(), len(self.categories))
        self.write("publishers", self._publisher_table(), self.shape.publishers)
        self.write("agents", self._agent_table(), self.shape.agents)
        self.write("installations", self._installation_table(), self.shape.installations)
        self.write("reviews", self._review_table(), self.shape.reviews)
        self.write("knowledge", self._knowledge_table(), self.shape.knowledge)

    def _user_table(self):
        columns = (
            "id",
            "password",
            "last_login",
            "is_superuser",
            "username",
            "first_name",
            "last_name",
            "email",
            "is_staff",
            "is_active",
            "date_joined",
        )
        return User, columns, self._user_rows()

    def _user_rows(self):
        rng, first_id = self.rng, self.first["user"]
        shared_hash = make_password(DEMO_PASSWORD)  # one hash for every demo user
        founded = _when(ANCHOR - SPAN - 30 * DAY)
        if self.with_admin:
            email = f"admin@{DEMO_EMAIL_DOMAIN}"
            admin_hash = make_password(ADMIN_PASSWORD)
            yield (
                first_id,
                admin_hash,
                None,
                True,
                "admin",
                "Ada",
                "Admin",
                email,
                True,
                True,
                founded,
            )
        if self.with_demo:
            email = f"demo@{DEMO_EMAIL_DOMAIN}"
            yield (
                first_id + 1,
                shared_hash,
                None,
                False,
                "demo",
                "Demo",
                "User",
                email,
                False,
                True,
                founded,
            )
        width = max(6, len(str(self.generated_users)))
        for j in range(self.generated_users):
            joined = ANCHOR - _between(rng, DAY, SPAN)
            self.joined.append(joined)
            username = f"user{j + 1:0{width}d}"
            yield (
                first_id + 2 + j,
                shared_hash,
                None,
                False,
                username,
                rng.choice(demo_data.FIRST_NAMES),
                rng.choice(demo_data.LAST_NAMES),
                f"{username}@{DEMO_EMAIL_DOMAIN}",
                False,
                True,
                _when(joined),
            )

    def _category_table(self):
        columns = ("id", "name", "slug", "description", "position")
        rows = (
            (self.first["category"] + i, v.name, slugify(v.name), v.description, i)
            for i, v in enumerate(self.categories)
        )
        return Category, columns, rows

    def _publisher_table(self):
        columns = ("id", "name", "slug", "website", "verified", "owner_id")
        rng = self.rng
        verified_head = max(1, len(self.publisher_names) // 7)

        def rows():
            for i, name in enumerate(self.publisher_names):
                slug = slugify(name)
                verified = i < verified_head or rng.random() < 0.15
                yield (
                    self.first["publisher"] + i,
                    name,
                    slug,
                    f"https://{slug}.example.com",
                    verified,
                    None,
                )

        return Publisher, columns, rows()

    def _agent_table(self):
        columns = (
            "id",
            "name",
            "slug",
            "tagline",
            "description",
            "category_id",
            "publisher_id",
            "icon",
            "version",
            "homepage_url",
            "source_url",
            "tags",
            "is_active",
            "is_featured",
            "created_at",
            "updated_at",
            "published_at",
            "rating_average",
            "rating_count",
            "install_count",
            "ratings_1",
            "ratings_2",
            "ratings_3",
            "ratings_4",
            "ratings_5",
        )
        return Agent, columns, self._agent_rows()

    def _agent_rows(self):
        rng = self.rng
        for i, plan in enumerate(self.agents):
            vocab = self.categories[plan.category]
            publisher_slug = slugify(self.publisher_names[plan.publisher])
            tagline = f"{rng.choice(vocab.verbs)} {rng.choice(vocab.objects)} "
            tagline += rng.choice(vocab.benefits)
            tags = rng.sample(vocab.tags, min(len(vocab.tags), 1 + int(rng.random() * 4)))
            if rng.random() < 0.3:
                tags.append(rng.choice(demo_data.GENERAL_TAGS))
            rating_count = sum(plan.histogram)
            weighted = sum(r * n for r, n in enumerate(plan.histogram, start=1))
            source = ""
            if rng.random() < 0.4:
                source = f"https://git.example.org/{publisher_slug}/{plan.slug}"
            yield (
                self.first["agent"] + i,
                plan.name,
                plan.slug,
                tagline[:200],
                self._description(rng, plan, vocab, tagline),
                self.first["category"] + plan.category,
                self.first["publisher"] + plan.publisher,
                "",
                f"{1 + int(rng.random() * 4)}.{int(rng.random() * 12)}.{int(rng.random() * 20)}",
                f"https://{publisher_slug}.example.com/agents/{plan.slug}",
                source,
                json.dumps(tags),
                plan.is_active,
                plan.is_featured,
                _when(plan.created),
                _when(plan.updated),
                _when(plan.published) if plan.published else None,
                weighted / rating_count if rating_count else 0.0,
                rating_count,
                plan.installs,
                *plan.histogram,
            )

    @staticmethod
    def _description(rng, plan, vocab, tagline) -> str:
        features = rng.sample(vocab.features, min(len(vocab.features), 3 + int(rng.random() * 3)))
        audience = rng.choice(vocab.audiences)
        how = rng.choice(demo_data.HOW_IT_WORKS).format(
            name=plan.name, integration=rng.choice(vocab.integrations)
        )
        integrations = ", ".join(rng.sample(vocab.integrations, min(3, len(vocab.integrations))))
        return (
            f"**{plan.name}** {tagline[0].lower()}{tagline[1:]}. "
            f"It is built for {audience} and anyone who works with {rng.choice(vocab.objects)}.\n\n"
            "## What it does\n\n"
            + "".join(f"- {feature}\n" for feature in features)
            + f"\n## How it works\n\n{how}\n\n"
            f"## Good to know\n\nWorks with {integrations}. {rng.choice(demo_data.GOOD_TO_KNOW)}\n"
        )

    def _installers(self, index: int, plan: AgentPlan) -> tuple[random.Random, list]:
        """The (user id, installed_at) pairs of one agent, replayable from its own stream."""
        rng = random.Random(f"{self.seed}:installs:{index}")
        picked = rng.sample(range(self.generated_users), plan.installs)
        first_user = self.first["user"] + 2
        users = [first_user + j for j in picked]
        joined = [self.joined[j] for j in picked]
        if plan.demo_installs:
            users[0], joined[0] = self.demo_id, ANCHOR - SPAN
        start = plan.published or plan.created
        return rng, [
            (user, _between(rng, max(start, when), ANCHOR - 60))
            for user, when in zip(users, joined, strict=True)
        ]

    def _installation_table(self):
        columns = ("id", "user_id", "agent_id", "installed_at")

        def rows():
            next_id = self.first["installation"]
            for i, plan in enumerate(self.agents):
                agent_id = self.first["agent"] + i
                for user, ts in self._installers(i, plan)[1]:
                    yield (next_id, user, agent_id, _when(ts))
                    next_id += 1

        return Installation, columns, rows()

    def _review_table(self):
        columns = (
            "id",
            "agent_id",
            "user_id",
            "rating",
            "title",
            "body",
            "is_hidden",
            "created_at",
            "updated_at",
        )
        return Review, columns, self._review_rows()

    def _review_rows(self):
        next_id = self.first["review"]
        titles, sentences = demo_data.REVIEW_TITLES, demo_data.REVIEW_SENTENCES
        for i, plan in enumerate(self.agents):
            if not plan.reviews:
                continue
            agent_id = self.first["agent"] + i
            vocab = self.categories[plan.category]
            rng, installers = self._installers(i, plan)
            chosen = rng.sample(range(len(installers)), plan.reviews)
            if plan.demo_reviews and 0 not in chosen:
                chosen[0] = 0  # installer 0 is the demo user
            ratings = [(r, False) for r, n in enumerate(plan.histogram, 1) for _ in range(n)]
            rng.shuffle(ratings)
            ratings += [(r, True) for r in plan.hidden]
            if plan.demo_reviews:
                at = chosen.index(0)  # pair the demo user with ratings[0], a visible one
                chosen[0], chosen[at] = chosen[at], chosen[0]
            for pick, (rating, hidden) in zip(chosen, ratings, strict=True):
                user, installed = installers[pick]
                mood = "good" if rating >= 4 else "mixed" if rating == 3 else "bad"
                words = {
                    "noun": rng.choice(vocab.nouns).lower(),
                    "object": rng.choice(vocab.objects),
                    "integration": rng.choice(vocab.integrations),
                }
                title = rng.choice(titles[mood]).format(**words)
                body = " ".join(
                    s.format(**words)
                    for s in rng.sample(sentences[mood], 1 + int(rng.random() * 3))
                )
                created = _between(rng, installed + 3_600, min(ANCHOR, installed + 60 * DAY))
                updated = created if rng.random() < 0.9 else _between(rng, created, ANCHOR)
                yield (
                    next_id,
                    agent_id,
                    user,
                    rating,
                    title,
                    body,
                    hidden,
                    _when(created),
                    _when(updated),
                )
                next_id += 1

    def _knowledge_table(self):
        columns = (
            "id",
            "user_id",
            "content_type",
            "title",
            "body",
            "source_url",
            "agent_id",
            "tags",
            "created_at",
            "updated_at",
        )
        return KnowledgeEntry, columns, self._knowledge_rows()

    def _knowledge_rows(self):
        rng = random.Random(f"{self.seed}:knowledge")
        types = [t for t, _ in KNOWLEDGE_TYPES]
        type_cum, acc = [], 0
        for _, share in KNOWLEDGE_TYPES:
            acc += share
            type_cum.append(acc)
        agent_total = self.agent_cum_weights[-1]
        first_user = self.first["user"] + 2
        for k in range(self.shape.knowledge):
            if self.with_demo and k < 3 * len(types):
                user, joined, content_type = self.demo_id, ANCHOR - SPAN, types[k % len(types)]
            else:
                # Activity is skewed too: a few users keep most of the entries.
                j = int(self.generated_users * rng.random() ** 2)
                user, joined = first_user + j, self.joined[j]
                content_type = types[bisect.bisect(type_cum, rng.random() * acc)]
            agent = None
            if rng.random() < 0.3:
                index = bisect.bisect(self.agent_cum_weights, rng.random() * agent_total)
                index = min(index, len(self.agents) - 1)
                agent = self.first["agent"] + index
                vocab = self.categories[self.agents[index].category]
                agent_name = self.agents[index].name
            else:
                vocab = rng.choice(self.categories)
                agent_name = "an agent"
            topic = rng.choice(vocab.topics + vocab.objects)
            title = rng.choice(demo_data.KNOWLEDGE_TITLES[content_type])
            title = title.format(topic=topic, Topic=_capitalised(topic))
            source = ""
            if content_type == "link" or (content_type == "document" and rng.random() < 0.4):
                source = (
                    f"https://{rng.choice(demo_data.LINK_HOSTS)}/"
                    f"{rng.choice(demo_data.LINK_PATHS)}/{slugify(topic)}"
                )
            body = self._knowledge_body(rng, content_type, topic, vocab, agent_name)
            tags = rng.sample(vocab.tags, int(rng.random() * 4))
            created = _between(rng, joined, ANCHOR - 60)
            updated = created if rng.random() < 0.7 else _between(rng, created, ANCHOR)
            yield (
                self.first["knowledge"] + k,
                user,
                content_type,
                title,
                body,
                source,
                agent,
                json.dumps(tags),
                _when(created),
                _when(updated),
            )

    @staticmethod
    def _knowledge_body(rng, content_type, topic, vocab, agent_name) -> str:
        words = {"topic": topic, "integration": rng.choice(vocab.integrations), "agent": agent_name}
        sentences = [s.format(**words) for s in rng.sample(demo_data.NOTE_SENTENCES, 3)]
        if content_type == "note":
            return " ".join(sentences)
        if content_type == "document":
            features = rng.sample(vocab.features, 3)
            return (
                f"# {_capitalised(topic)}\n\n{sentences[0]} {sentences[1]}\n\n## Checklist\n\n"
                + "".join(f"- {f}\n" for f in features)
                + f"\n## Notes\n\n{sentences[2]}\n"
            )
        if content_type == "link":
            return f"Bookmarked for {topic}. {sentences[0]}"
        if content_type == "snippet":
            return f"Used when working on {topic}.\n\n{rng.choice(demo_data.SNIPPETS)}\n"
        return f"**Q:** How should I approach {topic}?\n\n**A:** {sentences[0]} {sentences[1]}"


# --- Writers --------------------------------------------------------------------------------

PROGRESS_EVERY = 5_000
SQLITE_BATCH = 5_000


class TableWriter:
    """Streams generated rows into a table: COPY on PostgreSQL, executemany on SQLite.

    Rows carry explicit ids and timestamps; bulk_create would overwrite the auto_now fields
    (updated_at, knowledge created_at) with the time of the load.
    """

    def __init__(self, *, progress: bool):
        self.progress = progress
        self.timings: list[tuple[str, int, float]] = []

    def __call__(self, label: str, table, total: int) -> None:
        model, columns, rows = table
        started = time.monotonic()
        bar = tqdm(
            total=total,
            desc=f"{label:>13}",
            unit=" rows",
            file=sys.stderr,
            disable=not self.progress,
        )
        with bar:
            if connection.vendor == "postgresql":
                written = self._copy(model._meta.db_table, columns, rows, bar)
            else:
                written = self._insert(model, columns, rows, bar)
        if written != total:
            raise CommandError(f"{label}: wrote {written} rows, planned {total}")
        self.timings.append((label, written, time.monotonic() - started))

    @staticmethod
    def _copy(table: str, columns, rows, bar) -> int:
        quote = connection.ops.quote_name
        sql = f"COPY {quote(table)} ({', '.join(map(quote, columns))}) FROM STDIN"
        written = 0
        with connection.cursor() as cursor, cursor.copy(sql) as copy:
            for written, row in enumerate(rows, start=1):
                copy.write_row(row)
                if not written % PROGRESS_EVERY:
                    bar.update(PROGRESS_EVERY)
        bar.update(written % PROGRESS_EVERY)
        return written

    @staticmethod
    def _insert(model, columns, rows, bar) -> int:
        quote = connection.ops.quote_name
        names = ", ".join(map(quote, columns))
        values = ", ".join(["%s"] * len(columns))
        # Names come from _meta and the code above; values are bound.
        sql = f"INSERT INTO {quote(model._meta.db_table)} ({names}) VALUES ({values})"  # noqa: S608
        datetimes = [
            i
            for i, column in enumerate(columns)
            if model._meta.get_field(column.removesuffix("_id")).get_internal_type()
            == "DateTimeField"
        ]
        adapt = connection.ops.adapt_datetimefield_value
        written, batch = 0, []
        with connection.cursor() as cursor:
            for row in rows:
                if datetimes:
                    row = list(row)
                    for i in datetimes:
                        row[i] = adapt(row[i])
                batch.append(row)
                if len(batch) == SQLITE_BATCH:
                    cursor.executemany(sql, batch)
                    written += len(batch)
                    bar.update(len(batch))
                    batch = []
            if batch:
                cursor.executemany(sql, batch)
                written += len(batch)
                bar.update(len(batch))
        return written


# --- The command ----------------------------------------------------------------------------

# In deletion order. CategoryStats is written by triggers as the agents are loaded (one
# aggregate per COPY on PostgreSQL); it is emptied with them, before the categories it points at.
SEEDED_MODELS = (KnowledgeEntry, Review, Installation, Agent, CategoryStats, Publisher, Category)


class Command(BaseCommand):
    help = (
        "Load a deterministic demo data set. --scale small (~200 agents, a few seconds), "
        "bench (10,000 agents, 100,000 users, 1,000,000 installations, 250,000 reviews, "
        "500,000 knowledge entries) or N (N agents, everything else in bench proportion: "
        "10000 == bench). Refuses a database that has agents unless --replace or "
        f"--skip-if-present. Demo users (user000001...) and `demo` log in with {DEMO_PASSWORD!r}; "
        f"the staff account `admin` with {ADMIN_PASSWORD!r}."
    )

    def add_arguments(self, parser):
        parser.add_argument("--scale", default="small", help="small, bench or a number of agents")
        parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
        present = parser.add_mutually_exclusive_group()
        present.add_argument(
            "--replace",
            action="store_true",
            help="delete every agent, installation, review, knowledge entry and demo user first",
        )
        present.add_argument(
            "--skip-if-present",
            action="store_true",
            help="do nothing (successfully) when the database already has agents",
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bars")

    def handle(self, *args, scale, seed, replace, skip_if_present, no_progress, **options):
        shape = shape_for(scale)
        existing = Agent.objects.count()
        if existing and skip_if_present:
            self.stdout.write(f"The database already has {existing} agents: nothing to seed.")
            return
        if existing and not replace:
            raise CommandError(
                f"The database already has {existing} agents. Run with --replace to delete the "
                "marketplace and knowledge data and the demo users first, or with "
                "--skip-if-present to leave them."
            )
        progress = not no_progress and sys.stderr.isatty()
        writer = TableWriter(progress=progress)
        started = time.monotonic()
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    # One COPY of a million rows is one statement: lift the settings' per-request
                    # statement_timeout for this transaction only.
                    cursor.execute("SET LOCAL statement_timeout = 0")
                    # Check foreign keys as each COPY ends instead of queueing every check
                    # until the commit.
                    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            if replace:
                cleared = time.monotonic()
                self._delete_demo_data()
                writer.timings.append(("(delete)", 0, time.monotonic() - cleared))
            taken = self._check_usernames()
            seeder = Seeder(
                shape,
                seed,
                write=writer,
                first_ids=self._first_ids(),
                admin="admin" not in taken,
                demo="demo" not in taken,
            )
            with self._indexes_rebuilt_after_load(writer):
                seeder.run()
            finishing = time.monotonic()
            self._finish_load()
            writer.timings.append(("(analyze)", 0, time.monotonic() - finishing))
        self._after_seed(Agent.objects.all())
        self._report(writer.timings, time.monotonic() - started, taken)

    def _check_usernames(self) -> set[str]:
        """Usernames the demo needs that belong to real users (those accounts are skipped)."""
        if User.objects.filter(username__regex=r"^user[0-9]{6,}$").exists():
            raise CommandError(
                "Users named like the demo users (user000001...) exist but are not demo users: "
                "refusing to mix them."
            )
        taken = set(
            User.objects.filter(username__in=("admin", "demo")).values_list("username", flat=True)
        )
        for name in sorted(taken):
            self.stderr.write(f"A user named {name!r} already exists: not creating the demo one.")
        return taken

    def _first_ids(self) -> dict:
        def after_max(model) -> int:
            return (model.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1

        return {
            "user": after_max(User),
            "category": after_max(Category),
            "publisher": after_max(Publisher),
            "agent": after_max(Agent),
            "installation": after_max(Installation),
            "review": after_max(Review),
            "knowledge": after_max(KnowledgeEntry),
        }

    def _delete_demo_data(self) -> None:
        """Empty the marketplace and knowledge tables and delete the demo users.

        Raw statements, not QuerySet.delete(): the user-delete signals recount agents per
        user, which at bench scale would take hours.
        """
        tables = [connection.ops.quote_name(m._meta.db_table) for m in SEEDED_MODELS]
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
            else:
                for table in tables:
                    cursor.execute(f"DELETE FROM {table}")  # noqa: S608  names from _meta
        demo_users = User.objects.filter(email__endswith=f"@{DEMO_EMAIL_DOMAIN}").values("pk")
        # Rows of other apps that point at demo users (tokens, admin log, groups) go first.
        for relation in User._meta.related_objects:
            related = relation.related_model
            if related in SEEDED_MODELS:
                continue
            if relation.many_to_many:
                through = relation.through
                fk = next(f for f in through._meta.fields if f.related_model is User)
                through.objects.filter(**{f"{fk.name}__in": demo_users}).delete()
                continue
            rows = related._base_manager.filter(**{f"{relation.field.name}__in": demo_users})
            if relation.on_delete.__name__ == "SET_NULL":
                rows.update(**{relation.field.name: None})
            else:
                rows.delete()
        for field in User._meta.many_to_many:
            through = field.remote_field.through
            through.objects.filter(user__in=demo_users).delete()
        user_table = connection.ops.quote_name(User._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {user_table} WHERE email LIKE %s",  # noqa: S608  name from _meta
                [f"%@{DEMO_EMAIL_DOMAIN}"],
            )

    @contextlib.contextmanager
    def _indexes_rebuilt_after_load(self, writer):
        """PostgreSQL: load the seeded tables without their secondary indexes and foreign keys.

        They are dropped before the COPYs and rebuilt after them, in the same transaction:
        one sort per index instead of a million index insertions, one join per foreign key
        instead of a lookup per row. DDL is transactional, so whether the seed commits or
        fails, every index and constraint is there afterwards. Primary keys and unique
        constraints stay: they guard the rows while they are written.
        """
        if connection.vendor != "postgresql":
            yield
            return
        tables = [m._meta.db_table for m in SEEDED_MODELS]
        quote = connection.ops.quote_name
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
                "FROM pg_constraint WHERE contype = 'f' "
                "AND conrelid IN (SELECT unnest(%s::text[])::regclass) ORDER BY conname",
                [tables],
            )
            foreign_keys = cursor.fetchall()
            cursor.execute(
                "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index i "
                "WHERE indrelid IN (SELECT unnest(%s::text[])::regclass) "
                "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) "
                "ORDER BY 1",
                [tables],
            )
            indexes = cursor.fetchall()
            for table, name, _ in foreign_keys:
                cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {quote(name)}")
            for name, _ in indexes:
                cursor.execute(f"DROP INDEX {name}")
        yield
        started = time.monotonic()
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
            for _, definition in indexes:
                cursor.execute(definition)
            for table, name, definition in foreign_keys:
                cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {quote(name)} {definition}")
        writer.timings.append(("(indexes)", 0, time.monotonic() - started))

    def _finish_load(self) -> None:
        models = [User, *SEEDED_MODELS]
        with connection.cursor() as cursor:
            # Explicit ids bypass the sequences: move them past the rows just written.
            for sql in connection.ops.sequence_reset_sql(no_style(), models):
                cursor.execute(sql)
            if connection.vendor == "postgresql":
                for model in models:
                    cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")

    def _after_seed(self, agents) -> None:
        """Work that follows a committed seed: anything derived from the new agents, then
        retire every cached page and list (the rows changed without any signal firing)."""
        # WebP icons for the agents the first pages show; the others keep the initials badge
        # the templates draw, so a bench-scale seed stays fast (marketplace.icons).
        icons.generate_demo_icons()
        caching.forget_all()

    def _report(self, timings, elapsed: float, taken: set[str]) -> None:
        self.stdout.write(f"{'table':<15}{'rows':>12}{'seconds':>10}{'rows/s':>12}")
        for label, rows, seconds in timings:
            rate = f"{rows / seconds:,.0f}" if rows and seconds else ""
            self.stdout.write(f"{label:<15}{rows:>12,}{seconds:>10.1f}{rate:>12}")
        self.stdout.write(f"{'total':<15}{'':>12}{elapsed:>10.1f}")
        self.stdout.write(
            self.style.SUCCESS(f"Seeded in {elapsed:.1f} s.")
            + f" Demo users user000001... log in with password {DEMO_PASSWORD!r}."
        )
        if "demo" not in taken:
            self.stdout.write(f"  demo  / {DEMO_PASSWORD}  (has installs, reviews, knowledge)")
        if "admin" not in taken:
            self.stdout.write(f"  admin / {ADMIN_PASSWORD}  (staff, superuser)")
