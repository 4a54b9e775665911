"""The rows of a demo data set, one generator per table, drawn from a plan (plan.py).

A row is a tuple with a value for every column of its model, in field order
(`aios.bulk_load.columns_of`), explicit id first. Installations and reviews are drawn from one
random stream per agent, so the review pass replays an agent's installers instead of keeping a
million of them in memory. Other apps add tables of their own (`register`: knowledge/demo.py).
"""

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db.models import Model
from django.utils.module_loading import autodiscover_modules
from django.utils.text import slugify

from marketplace.demo import vocabulary
from marketplace.demo.plan import (
    ADMIN_PASSWORD,
    ANCHOR,
    DAY,
    DEMO_EMAIL_DOMAIN,
    DEMO_PASSWORD,
    SPAN,
    AgentPlan,
    Plan,
    Shape,
    between,
    datetime_at,
)
from marketplace.models import Agent, Category, Installation, Publisher, Review, rating_average

User = get_user_model()


@dataclass(frozen=True)
class DemoTable:
    """Another app's demo table: rows drawn from the same plan, loaded after the marketplace's."""

    label: str  # also its key in plan.first, the table's first id
    model: type[Model]
    rows: Callable[[Plan], Iterator[tuple]]
    count: Callable[[Shape], int]


_OTHER_TABLES: dict[str, DemoTable] = {}


def register(table: DemoTable) -> None:
    """Called by an app's `demo` module; marketplace imports no other app."""
    _OTHER_TABLES[table.label] = table


def other_tables() -> list[DemoTable]:
    """The tables every installed app's `demo` module registers, in registration order."""
    autodiscover_modules("demo")
    return list(_OTHER_TABLES.values())


def tables(plan: Plan) -> list[tuple[str, type[Model], Iterator[tuple], int]]:
    """(label, model, rows, row count) per table, in load order.

    Consume them in this order: the user rows continue the plan's random stream (the publisher
    and agent rows after them) and record when each user joined, which later tables read.
    """
    users = plan.generated_users + plan.with_admin + plan.with_demo
    shape = plan.shape
    return [
        ("users", User, user_rows(plan), users),
        ("categories", Category, category_rows(plan), len(vocabulary.CATEGORIES)),
        ("publishers", Publisher, publisher_rows(plan), shape.publishers),
        ("agents", Agent, agent_rows(plan), shape.agents),
        ("installations", Installation, installation_rows(plan), shape.installations),
        ("reviews", Review, review_rows(plan), shape.reviews),
    ] + [
        (table.label, table.model, table.rows(plan), table.count(shape)) for table in other_tables()
    ]


def user_rows(plan: Plan) -> Iterator[tuple]:
    rng, first_id = plan.rng, plan.first["user"]
    shared_hash = make_password(DEMO_PASSWORD)  # one hash for every demo user
    founded = datetime_at(ANCHOR - SPAN - 30 * DAY)
    if plan.with_admin:
        admin_hash = make_password(ADMIN_PASSWORD)
        yield _user(first_id, admin_hash, "admin", "Ada", "Admin", staff=True, joined=founded)
    if plan.with_demo:
        yield _user(first_id + 1, shared_hash, "demo", "Demo", "User", staff=False, joined=founded)
    width = max(6, len(str(plan.generated_users)))
    for j in range(plan.generated_users):
        joined = ANCHOR - between(rng, DAY, SPAN)
        plan.joined.append(joined)
        yield _user(
            first_id + 2 + j,
            shared_hash,
            f"user{j + 1:0{width}d}",
            rng.choice(vocabulary.FIRST_NAMES),
            rng.choice(vocabulary.LAST_NAMES),
            staff=False,
            joined=datetime_at(joined),
        )


def _user(user_id, password, username, first_name, last_name, *, staff, joined) -> tuple:
    """A demo user's row; staff accounts are superusers too. Nobody has logged in yet."""
    email = f"{username}@{DEMO_EMAIL_DOMAIN}"
    return (
        user_id,
        password,
        None,  # last_login
        staff,  # is_superuser
        username,
        first_name,
        last_name,
        email,
        staff,  # is_staff
        True,  # is_active
        joined,
    )


def category_rows(plan: Plan) -> Iterator[tuple]:
    first_id = plan.first["category"]
    for i, vocab in enumerate(vocabulary.CATEGORIES):
        yield (first_id + i, vocab.name, slugify(vocab.name), vocab.description, i)


def publisher_rows(plan: Plan) -> Iterator[tuple]:
    rng, first_id = plan.rng, plan.first["publisher"]
    verified_head = max(1, len(plan.publisher_names) // 7)
    for i, name in enumerate(plan.publisher_names):
        slug = slugify(name)
        verified = i < verified_head or rng.random() < 0.15
        yield (first_id + i, name, slug, f"https://{slug}.example.com", verified, None)


def agent_rows(plan: Plan) -> Iterator[tuple]:
    rng = plan.rng
    for i, agent in enumerate(plan.agents):
        vocab = vocabulary.CATEGORIES[agent.category]
        publisher_slug = slugify(plan.publisher_names[agent.publisher])
        tagline = f"{rng.choice(vocab.verbs)} {rng.choice(vocab.objects)} "
        tagline += rng.choice(vocab.benefits)
        tags = rng.sample(vocab.tags, min(len(vocab.tags), 1 + int(rng.random() * 4)))
        if rng.random() < 0.3:
            tags.append(rng.choice(vocabulary.GENERAL_TAGS))
        rating_count = sum(agent.histogram)
        source = ""
        if rng.random() < 0.4:
            source = f"https://git.example.org/{publisher_slug}/{agent.slug}"
        description = _description(rng, agent, vocab, tagline)
        version = f"{1 + int(rng.random() * 4)}.{int(rng.random() * 12)}.{int(rng.random() * 20)}"
        yield (
            plan.first["agent"] + i,
            agent.name,
            agent.slug,
            tagline[:200],
            description,
            plan.first["category"] + agent.category,
            plan.first["publisher"] + agent.publisher,
            "",  # icon: marketplace.icons draws the first pages' after the seed
            version,
            f"https://{publisher_slug}.example.com/agents/{agent.slug}",
            source,
            json.dumps(tags),
            agent.is_active,
            agent.is_featured,
            datetime_at(agent.created),
            datetime_at(agent.updated),
            datetime_at(agent.published) if agent.published else None,
            rating_average(agent.histogram),
            rating_count,
            agent.installs,
            *agent.histogram,
        )


def _description(rng: random.Random, agent: AgentPlan, vocab, tagline: str) -> str:
    features = rng.sample(vocab.features, min(len(vocab.features), 3 + int(rng.random() * 3)))
    audience = rng.choice(vocab.audiences)
    how = rng.choice(vocabulary.HOW_IT_WORKS).format(
        name=agent.name, integration=rng.choice(vocab.integrations)
    )
    integrations = ", ".join(rng.sample(vocab.integrations, min(3, len(vocab.integrations))))
    return (
        f"**{agent.name}** {tagline[0].lower()}{tagline[1:]}. "
        f"It is built for {audience} and anyone who works with {rng.choice(vocab.objects)}.\n\n"
        "## What it does\n\n"
        + "".join(f"- {feature}\n" for feature in features)
        + f"\n## How it works\n\n{how}\n\n"
        f"## Good to know\n\nWorks with {integrations}. {rng.choice(vocabulary.GOOD_TO_KNOW)}\n"
    )


def _installers(plan: Plan, index: int, agent: AgentPlan) -> tuple[random.Random, list]:
    """The (user id, installed_at) pairs of one agent, replayable from its own stream."""
    rng = random.Random(f"{plan.seed}:installs:{index}")
    picked = rng.sample(range(plan.generated_users), agent.installs)
    first_user = plan.first["user"] + 2
    users = [first_user + j for j in picked]
    joined = [plan.joined[j] for j in picked]
    if agent.demo_installs:
        users[0], joined[0] = plan.demo_id, ANCHOR - SPAN
    start = agent.published or agent.created
    return rng, [
        (user, between(rng, max(start, when), ANCHOR - 60))
        for user, when in zip(users, joined, strict=True)
    ]


def installation_rows(plan: Plan) -> Iterator[tuple]:
    next_id = plan.first["installation"]
    for i, agent in enumerate(plan.agents):
        agent_id = plan.first["agent"] + i
        for user, installed in _installers(plan, i, agent)[1]:
            yield (next_id, user, agent_id, datetime_at(installed))
            next_id += 1


def review_rows(plan: Plan) -> Iterator[tuple]:
    next_id = plan.first["review"]
    for i, agent in enumerate(plan.agents):
        if not agent.reviews:
            continue
        agent_id = plan.first["agent"] + i
        vocab = vocabulary.CATEGORIES[agent.category]
        rng, installers = _installers(plan, i, agent)
        for (user, installed), (rating, hidden) in _reviewers(rng, agent, installers):
            title, body = _review_text(rng, vocab, rating)
            created = between(rng, installed + 3_600, min(ANCHOR, installed + 60 * DAY))
            updated = created if rng.random() < 0.9 else between(rng, created, ANCHOR)
            yield (
                next_id,
                agent_id,
                user,
                rating,
                title,
                body,
                hidden,
                datetime_at(created),
                datetime_at(updated),
            )
            next_id += 1


def _reviewers(rng: random.Random, agent: AgentPlan, installers: list) -> Iterator[tuple]:
    """Pairs of (installer, (rating, hidden)): the agent's planned ratings, dealt to installers."""
    chosen = rng.sample(range(len(installers)), agent.reviews)
    if agent.demo_reviews and 0 not in chosen:
        chosen[0] = 0  # installer 0 is the demo user
    ratings = [(r, False) for r, n in enumerate(agent.histogram, 1) for _ in range(n)]
    rng.shuffle(ratings)
    ratings += [(r, True) for r in agent.hidden]
    if agent.demo_reviews:
        at = chosen.index(0)  # pair the demo user with ratings[0], a visible one
        chosen[0], chosen[at] = chosen[at], chosen[0]
    return zip((installers[pick] for pick in chosen), ratings, strict=True)


def _review_text(rng: random.Random, vocab, rating: int) -> tuple[str, str]:
    mood = "good" if rating >= 4 else "mixed" if rating == 3 else "bad"
    words = {
        "noun": rng.choice(vocab.nouns).lower(),
        "object": rng.choice(vocab.objects),
        "integration": rng.choice(vocab.integrations),
    }
    title = rng.choice(vocabulary.REVIEW_TITLES[mood]).format(**words)
    sentences = vocabulary.REVIEW_SENTENCES[mood]
    body = " ".join(s.format(**words) for s in rng.sample(sentences, 1 + int(rng.random() * 3)))
    return title, body


def capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]
