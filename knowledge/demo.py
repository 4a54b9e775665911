"""Knowledge entries for the demo data set (`manage.py seed_demo`).

Registered with marketplace.demo, which loads them after its own tables from the same plan:
entries belong to the plan's users, and some are about its agents.
"""

import bisect
import itertools
import json
import random
from collections.abc import Iterator

from django.utils.text import slugify

from marketplace.demo import vocabulary
from marketplace.demo.plan import ANCHOR, SPAN, Plan, between, datetime_at
from marketplace.demo.rows import DemoTable, capitalised, register

from .models import KnowledgeEntry

TYPES = (("note", 35), ("document", 15), ("link", 25), ("snippet", 15), ("faq", 10))


TITLES = {
    "note": ("Notes on {topic}", "{topic}: what I learned", "Quick note about {topic}"),
    "document": ("{Topic} guide", "How we handle {topic}", "{Topic}: team handbook"),
    "link": ("{Topic} reference", "Good read on {topic}", "Official docs: {topic}"),
    "snippet": ("Snippet: {topic}", "{Topic} one-liner", "Script for {topic}"),
    "faq": ("How do I get started with {topic}?", "What is the best way to do {topic}?"),
}
NOTE_SENTENCES = (
    "Keep {topic} simple at first and add detail only when it pays off.",
    "The {integration} export is the easiest way to get data in.",
    "Ask {agent} for a first draft, then edit by hand.",
    "Check the output against the original before sharing it.",
    "Write down what worked so the team does not relearn it.",
    "Review this list every Friday.",
)
SNIPPETS = (
    "```python\nfor row in rows:\n    if row.get('status') == 'done':\n"
    "        print(row['id'])\n```",
    "```sql\nSELECT category, count(*) FROM items GROUP BY category ORDER BY 2 DESC;\n```",
    "```bash\nfind . -name '*.csv' -mtime -7 | xargs wc -l\n```",
    "```python\nimport json\n\nwith open('export.json') as f:\n    data = json.load(f)\n```",
    "```javascript\nconst total = items.reduce((sum, item) => sum + item.amount, 0);\n```",
)
LINK_PATHS = ("docs", "guides", "blog", "handbook", "reference", "learn")
LINK_HOSTS = ("docs.example.com", "example.org", "learn.example.net", "wiki.example.com")


def knowledge_rows(plan: Plan) -> Iterator[tuple]:
    """The entries, from a random stream of their own; the demo user keeps a few of each type."""
    rng = random.Random(f"{plan.seed}:knowledge")
    types = [name for name, _ in TYPES]
    type_cum = list(itertools.accumulate(share for _, share in TYPES))
    first_user = plan.first["user"] + 2
    for k in range(plan.shape.knowledge):
        if plan.with_demo and k < 3 * len(types):
            user, joined, content_type = plan.demo_id, ANCHOR - SPAN, types[k % len(types)]
        else:
            # Activity is skewed too: a few users keep most of the entries.
            j = int(plan.generated_users * rng.random() ** 2)
            user, joined = first_user + j, plan.joined[j]
            content_type = types[bisect.bisect(type_cum, rng.random() * type_cum[-1])]
        agent, vocab, agent_name = _about(rng, plan)
        topic = rng.choice(vocab.topics + vocab.objects)
        title = rng.choice(TITLES[content_type])
        title = title.format(topic=topic, Topic=capitalised(topic))
        source = ""
        if content_type == "link" or (content_type == "document" and rng.random() < 0.4):
            source = f"https://{rng.choice(LINK_HOSTS)}/{rng.choice(LINK_PATHS)}/{slugify(topic)}"
        body = _body(rng, content_type, topic, vocab, agent_name)
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


def _about(rng: random.Random, plan: Plan) -> tuple:
    """(agent id or None, vocabulary, agent name) of an entry: three in ten are about an agent,
    drawn by popularity, the others about a category's topics."""
    if rng.random() < 0.3:
        index = bisect.bisect(plan.agent_cum_weights, rng.random() * plan.agent_cum_weights[-1])
        index = min(index, len(plan.agents) - 1)
        agent = plan.agents[index]
        return plan.first["agent"] + index, vocabulary.CATEGORIES[agent.category], agent.name
    return None, rng.choice(vocabulary.CATEGORIES), "an agent"


def _body(rng: random.Random, content_type: str, topic: str, vocab, agent_name) -> str:
    words = {"topic": topic, "integration": rng.choice(vocab.integrations), "agent": agent_name}
    sentences = [s.format(**words) for s in rng.sample(NOTE_SENTENCES, 3)]
    if content_type == "note":
        return " ".join(sentences)
    if content_type == "document":
        features = rng.sample(vocab.features, 3)
        return (
            f"# {capitalised(topic)}\n\n{sentences[0]} {sentences[1]}\n\n## Checklist\n\n"
            + "".join(f"- {f}\n" for f in features)
            + f"\n## Notes\n\n{sentences[2]}\n"
        )
    if content_type == "link":
        return f"Bookmarked for {topic}. {sentences[0]}"
    if content_type == "snippet":
        return f"Used when working on {topic}.\n\n{rng.choice(SNIPPETS)}\n"
    return f"**Q:** How should I approach {topic}?\n\n**A:** {sentences[0]} {sentences[1]}"


register(DemoTable("knowledge", KnowledgeEntry, knowledge_rows, lambda shape: shape.knowledge))
