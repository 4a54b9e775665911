"""How the knowledge base's pages and API are cached (aios.response_cache keeps the copies)."""

from django.db import transaction

from aios import response_cache
from aios.response_cache import CachePolicy, user_ns

ENTRIES_TTL = 60
AGENT_NAMES_NS = "user:agent-names"  # entries name their agent: any agent's save retires it

# A user's entries, per user; installs and reviews show nowhere here.
own_entries = CachePolicy(
    "user",
    ttl=ENTRIES_TTL,
    per_user=True,
    depends_on=[AGENT_NAMES_NS],
    follows_activity=False,
)


def _entry_changed(sender, instance, **kwargs):
    owner = instance.user_id
    transaction.on_commit(lambda: response_cache.bump([user_ns(owner)]))


def _agent_changed(sender, instance, **kwargs):
    transaction.on_commit(lambda: response_cache.bump([AGENT_NAMES_NS]))


def connect_receivers() -> None:
    from django.db.models.signals import post_delete, post_save

    from marketplace.models import Agent

    from .models import KnowledgeEntry

    for signal in (post_save, post_delete):
        kind = "save" if signal is post_save else "del"
        signal.connect(_entry_changed, sender=KnowledgeEntry, dispatch_uid=f"kb-cache-entry-{kind}")
        signal.connect(_agent_changed, sender=Agent, dispatch_uid=f"kb-cache-agent-{kind}")
