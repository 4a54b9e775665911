"""How the knowledge base's own pages and API are cached (aios.response_cache keeps them)."""

from marketplace import caching

# A user's entries, per user. Entries name their agent: an agent's rename (a listings change)
# retires them too; installs and reviews show nowhere here.
own_entries = caching.cached_response(
    "user",
    ttl=caching.USER_TTL,
    per_user=True,
    depends_on=[caching.CATALOG_NS],
    follows_activity=False,
)
