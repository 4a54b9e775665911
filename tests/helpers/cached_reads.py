"""The site's cached reads and the world they are read in: the invalidation matrix warms and
rereads these, and the warm-read tests check each costs no query."""

import re

from django.test import Client, override_settings

from marketplace.models import Review
from tests.factories import (
    AgentFactory,
    CategoryFactory,
    KnowledgeEntryFactory,
    PublisherFactory,
    UserFactory,
)
from tests.helpers.clients import session_client, token_client

CSRF_VALUE = re.compile(r'(name="csrfmiddlewaretoken" value=")[^"]*')

# Every cached read, by who reads it: "anon", the writer by token ("api") or session ("web").
READS = [
    # API
    ("anon", "/api/v1/marketplace/agents/"),
    ("api", "/api/v1/marketplace/agents/"),
    ("anon", "/api/v1/marketplace/agents/?category=writing"),
    ("anon", "/api/v1/marketplace/agents/?category=writing&ordering=-installs"),
    ("anon", "/api/v1/marketplace/agents/?category=coding"),
    ("anon", "/api/v1/marketplace/agents/featured/"),
    ("anon", "/api/v1/marketplace/categories/"),
    ("anon", "/api/v1/marketplace/stats/"),
    ("anon", "/api/v1/agents/search/?q=alpha"),
    ("anon", "/api/v1/agents/{a}/"),
    ("api", "/api/v1/agents/{a}/"),
    ("web", "/api/v1/agents/{a}/"),
    ("anon", "/api/v1/agents/{a}/reviews/"),
    ("api", "/api/v1/agents/{a}/reviews/mine/"),
    ("api", "/api/v1/me/installations/"),
    ("web", "/api/v1/me/installations/"),
    ("api", "/api/v1/knowledge/entries/"),
    ("api", "/api/v1/knowledge/entries/{e}/"),
    # Pages
    ("anon", "/"),
    ("web", "/"),
    ("anon", "/agents/"),
    ("web", "/agents/"),
    ("anon", "/agents/?category=writing"),
    ("anon", "/agents/?category=coding&sort=-installs"),
    ("anon", "/search/?q=alpha"),
    ("web", "/search/?q=alpha"),
    ("anon", "/stats/"),
    ("web", "/stats/"),
    ("anon", "/agents/{slug}/"),
    ("web", "/agents/{slug}/"),
    ("anon", "/agents/{slug}/reviews/"),
    ("web", "/me/agents/"),
    ("web", "/knowledge/"),
    ("web", "/knowledge/{e}/"),
]
# Read fresh on every request by design (CachePolicy signed_in_copies=False): the matrix
# still rereads them after every write; the warm-read tests do not expect a hit.
UNCACHED_READS = [("api", "/api/v1/agents/{a}/"), ("web", "/api/v1/agents/{a}/")]


# --- The world every case starts from ----------------------------------------------------


class World:
    """A writer (by token, by session), a staff member, an anonymous visitor, three agents:
    Alpha and Beta in Writing, Gamma (featured) in Coding."""

    def __init__(self):
        self.category = CategoryFactory(name="Writing")
        self.publisher = PublisherFactory(name="Acme")
        self.agent = AgentFactory(
            name="Alpha", slug="alpha", category=self.category, publisher=self.publisher
        )
        self.other = AgentFactory(name="Beta", slug="beta", category=self.category)
        self.coding = CategoryFactory(name="Coding")
        self.featured = AgentFactory(
            name="Gamma", slug="gamma", category=self.coding, is_featured=True
        )
        self.writer = UserFactory(username="writer")
        self.staff = UserFactory(username="staff", is_staff=True, is_superuser=True)
        self.carol = UserFactory(username="carol")
        self.entry = KnowledgeEntryFactory(user=self.writer, agent=self.agent, title="Notes")
        self.api = token_client(self.writer)
        self.web = session_client(self.writer)
        self.admin = session_client(self.staff)
        self.anon = Client()

    def client(self, name) -> Client:
        return getattr(self, name)

    def review(self, user=None) -> Review:
        return Review.objects.get(user=user or self.writer, agent=self.agent)

    def reads(self) -> list[tuple[str, str]]:
        ids = {"a": self.agent.pk, "e": self.entry.pk, "slug": self.agent.slug}
        return [(name, url.format(**ids)) for name, url in READS]


def content(response):
    """What a reader sees: JSON as data; HTML with the (per-render masked) CSRF token blanked."""
    if response.get("Content-Type", "").startswith("application/json"):
        return response.status_code, response.json()
    return response.status_code, CSRF_VALUE.sub(r"\1", response.content.decode())


def truth(client, url):
    with override_settings(CACHE_ENABLED=False):
        return content(client.get(url))
