"""The rows of a demo data set, one generator per table, drawn from a plan (plan.py).

A row is a tuple with a value for every column of its model, in field order
(`aios.bulk_load.columns_of`), explicit id first. Installations and reviews are drawn from one
random stream per agent, so the review pass replays an agent's installers instead of keeping a
million of them in memory; knowledge entries have a stream of their own.
"""

import bisect
import itertools
import json
import random
from collections.abc import Iterator

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db.models import Model
from django.utils.text import slugify

from knowledge.models import KnowledgeEntry
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
    between,
    datetime_at,
)
from marketplace.models import Agent, Category, Installation, Publisher, Review, rating_average

User = get_user_model()

KNOWLEDGE_TYPES = (("note", 35), ("document", 15), ("link", 25), ("snippet", 15), ("faq", 10))


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
        ("knowledge", KnowledgeEntry, knowledge_rows(plan), shape.knowledge),
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


def knowledge_rows(plan: Plan) -> Iterator[tuple]:
    rng = random.Random(f"{plan.seed}:knowledge")
    types = [name for name, _ in KNOWLEDGE_TYPES]
    type_cum = list(itertools.accumulate(share for _, share in KNOWLEDGE_TYPES))
    first_user = plan.first["user"] + 2
    for k in range(plan.shape.knowledge):
        if plan.with_demo and k < 3 * len(types):
            user, joined, content_type = plan.demo_id, ANCHOR - SPAN, types[k % len(types)]
        else:
            # Activity is skewed too: a few users keep most of the entries.
            j = int(plan.generated_users * rng.random() ** 2)
            user, joined = first_user + j, plan.joined[j]
            content_type = types[bisect.bisect(type_cum, rng.random() * type_cum[-1])]
        agent, vocab, agent_name = _knowledge_agent(rng, plan)
        topic = rng.choice(vocab.topics + vocab.objects)
        title = rng.choice(vocabulary.KNOWLEDGE_TITLES[content_type])
        title = title.format(topic=topic, Topic=_capitalised(topic))
        source = ""
        if content_type == "link" or (content_type == "document" and rng.random() < 0.4):
            source = (
                f"https://{rng.choice(vocabulary.LINK_HOSTS)}/"
                f"{rng.choice(vocabulary.LINK_PATHS)}/{slugify(topic)}"
            )
        body = _knowledge_body(rng, content_type, topic, vocab, agent_name)
        tags = rng.sample(vocab.tags, int(rng.random() * 4))
        created = between(rng, joined, ANCHOR - 60)
        updated = created if rng.random() < 0.7 else between(rng, created, ANCHOR)
        yield (
            plan.first["knowledge"] + k,
            user,
            content_type,
            title,
            body,
            source,
            agent,
            json.dumps(tags),
            datetime_at(created),
            datetime_at(updated),
        )


def _knowledge_agent(rng: random.Random, plan: Plan) -> tuple:
    """(agent id or None, vocabulary, agent name) of an entry: three in ten are about an agent,
    drawn by popularity, the others about a category's topics."""
    if rng.random() < 0.3:
        index = bisect.bisect(plan.agent_cum_weights, rng.random() * plan.agent_cum_weights[-1])
        index = min(index, len(plan.agents) - 1)
        agent = plan.agents[index]
        return plan.first["agent"] + index, vocabulary.CATEGORIES[agent.category], agent.name
    return None, rng.choice(vocabulary.CATEGORIES), "an agent"


def _knowledge_body(rng: random.Random, content_type: str, topic: str, vocab, agent_name) -> str:
    words = {"topic": topic, "integration": rng.choice(vocab.integrations), "agent": agent_name}
    sentences = [s.format(**words) for s in rng.sample(vocabulary.NOTE_SENTENCES, 3)]
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
        return f"Used when working on {topic}.\n\n{rng.choice(vocabulary.SNIPPETS)}\n"
    return f"**Q:** How should I approach {topic}?\n\n**A:** {sentences[0]} {sentences[1]}"


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]
