"""Agent search: the one place that picks the query by database backend.

    agents = search_agents(q="tranlator", category="productivity", min_rating=3)
    page = paginate_keyset(agents, ordering=search_ordering("relevance"), ...)
    facets = search_facets(q="tranlator", min_rating=3)

PostgreSQL matches full text plus trigram typos, SQLite (the embedded default) every word;
either way only the SEARCH_CANDIDATES best-quality matches (plus exact names) are scored and
paged, and facets count at most FACET_CAP + 1 matches. docs/search.md has the ranking, the
backends' differences and what users can see of the bounds.
"""

import difflib
import hashlib
import re

from django.db import connection, connections
from django.db.models import BooleanField, Case, F, FloatField, Q, Value, When
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast, Lower
from django.db.models.lookups import Exact

from aios import replicas, response_cache

from . import caching
from .managers import AGENT_ORDERINGS, quality
from .models import Agent, Category

MAX_QUERY_LENGTH = 200
MAX_WORDS = 8
RELEVANCE = "relevance"
SEARCH_ORDERINGS = (RELEVANCE, *AGENT_ORDERINGS)
EXACT_NAME_BONUS = 10.0
# Matches scored and paged per search, best quality first (exact names come on top of these);
# FACET_CAP: matches counted for the facets before they read "1,000+". docs/search.md has
# the measurements behind both.
SEARCH_CANDIDATES = 500
FACET_CAP = 1_000

_WORD = re.compile(r"\w+")


class SearchQueryTooLong(ValueError):
    """q is longer than MAX_QUERY_LENGTH characters."""


def clean_query(q) -> str:
    """q stripped; raises SearchQueryTooLong past MAX_QUERY_LENGTH characters."""
    q = (q or "").strip()
    if len(q) > MAX_QUERY_LENGTH:
        raise SearchQueryTooLong(f"Search text is limited to {MAX_QUERY_LENGTH} characters.")
    return q


def search_ordering(ordering: str | None):
    """The paginator's sort spec for a search ordering name (default: relevance)."""
    ordering = ordering or RELEVANCE
    if ordering == RELEVANCE:
        return ("score", "desc")
    if ordering not in AGENT_ORDERINGS:
        raise ValueError(f"unknown ordering {ordering!r}")
    return AGENT_ORDERINGS[ordering]


def _same_name(q: str):
    """name equals q ignoring case: `lower(name) = lower(q)` (agent_active_lname_idx)."""
    return Exact(Lower("name"), Lower(Value(q)))


def _exact_name(q: str):
    return Case(
        When(_same_name(q), then=Value(EXACT_NAME_BONUS)),
        default=Value(0.0),
        output_field=FloatField(),
    )


def _postgres_tsquery(q: str) -> tuple[str, list]:
    """SQL and params for the tsquery: the websearch query, or its head plus a prefix last word."""
    sql, params = "websearch_to_tsquery('english'::regconfig, %s)", [q]
    tokens = q.split()
    last = tokens[-1] if tokens else ""
    # Only a plain last word is a prefix: never inside quotes or a negation ("-foo").
    if _WORD.fullmatch(last) and q.count('"') % 2 == 0:
        head = " ".join(tokens[:-1])
        prefix = "to_tsquery('simple'::regconfig, %s)"
        if head:
            prefix = f"(websearch_to_tsquery('english'::regconfig, %s) && {prefix})"
            params += [head]
        sql = f"({sql} || {prefix})"
        params += [f"{last.lower()}:*"]
    return sql, params


class _AgentSQL(RawSQL):
    """RawSQL naming the agents table `{agent}`, compiled as the alias the query gives it: the
    text still holds inside a subquery, where Django renames the table (U0)."""

    def as_sql(self, compiler, connection):
        agent = compiler.quote_name_unless_alias(compiler.query.base_table)
        return f"({self.sql.replace('{agent}', agent)})", self.params


_POSTGRES_QUALITY = "{agent}.search_quality"  # `quality()`, stored (migration 0007)


def _postgres_match_and_score(q: str):
    """(match, score) in SQL: the score as an expression tree took ~2 ms to compile."""
    tsq, tsq_params = _postgres_tsquery(q)
    # The SQL text is constant; q reaches it only as parameters.
    if '"' in q or any(t.startswith("-") for t in q.split()):
        # Phrases and exclusions are precise requests: typo tolerance would override them.
        match_sql, match_params = f"{{agent}}.search_vector @@ {tsq}", tsq_params
    else:
        match_sql = f"{{agent}}.search_vector @@ {tsq} OR lower({{agent}}.name) %%> lower(%s)"
        match_params = [*tsq_params, q]
    match = _AgentSQL(match_sql, match_params, output_field=BooleanField())
    # pg_trgm lower-cases both words itself, so word_similarity() gets no lower(), which cost
    # about 1 us of the ~10 us each matching row costs the page query.
    score = _AgentSQL(
        f"CASE WHEN lower({{agent}}.name) = lower(%s) THEN {EXACT_NAME_BONUS!r} ELSE 0.0 END"
        f" + (ts_rank({{agent}}.search_vector, {tsq})::float8"
        f" + 0.5 * word_similarity(%s, {{agent}}.name)::float8) * ({_POSTGRES_QUALITY})",
        [q, *tsq_params, q],
        output_field=FloatField(),
    )
    return match, score


def _sqlite_match_and_relevance(q: str):
    words = list(dict.fromkeys(w.lower() for w in _WORD.findall(q)))[:MAX_WORDS]
    if not words:  # only punctuation: match the text as typed
        words = [q]
    match = Q()
    relevance = Value(0.0)
    for word in words:
        match &= (
            Q(name__icontains=word) | Q(tagline__icontains=word) | Q(description__icontains=word)
        )
        relevance = relevance + Case(
            When(Q(name__icontains=word), then=Value(1.0)),
            When(Q(tagline__icontains=word), then=Value(0.5)),
            default=Value(0.2),
            output_field=FloatField(),
        )
    return match, relevance / Value(float(len(words)))


def _matching(*, q: str, min_rating=None):
    """(listed agents matching q and min_rating, their score, their quality); no category yet."""
    agents = Agent.objects.listed()
    if min_rating is not None:
        agents = agents.min_rating(min_rating)
    if connection.vendor == "postgresql":
        stored = _AgentSQL(_POSTGRES_QUALITY, [], output_field=FloatField())
        if not q:
            return agents, stored, stored
        match, score = _postgres_match_and_score(q)
        # `+ 0.0` hides agent_active_quality_idx from the candidate ORDER BY: walking it, the
        # planner ran the match (trigram similarity) on ~20 rows per candidate (39 ms for
        # `design` at 100k agents); the match's bitmap and a top-N sort took ~5 ms.
        unindexed = _AgentSQL(f"{_POSTGRES_QUALITY} + 0.0", [], output_field=FloatField())
        return agents.filter(match), score, unindexed
    if not q:
        return agents, quality(), quality()
    match, relevance = _sqlite_match_and_relevance(q)
    return agents.filter(match), _exact_name(q) + relevance * quality(), quality()


def _candidates(agents, *, quality, q: str):
    """The SEARCH_CANDIDATES best-quality agents of `agents`, plus those named q, as a condition.

    Each part is a LIMIT over an index order or lookup, so the scoring, sorting and paging
    above it never see more than 2 * SEARCH_CANDIDATES rows, however many agents match.
    """
    parts = [agents.order_by(quality.desc(), F("pk").desc()).values("id")[:SEARCH_CANDIDATES]]
    if q:
        parts.append(agents.filter(_same_name(q)).order_by().values("id")[:SEARCH_CANDIDATES])
    sqls, params = [], []
    for part in parts:
        sql, part_params = part.query.sql_with_params()
        sqls.append(f"SELECT candidates.id FROM ({sql}) AS candidates")  # noqa: S608  compiled SQL
        params.extend(part_params)
    union = " UNION ALL ".join(sqls)
    if connection.vendor == "postgresql":
        # `= ANY(ARRAY(...))` runs the candidates once and fetches them by primary key; with
        # `IN (...)` the planner may hash-join them against a scan of every agent.
        return _AgentSQL(f"{{agent}}.id = ANY(ARRAY({union}))", params, BooleanField())
    return _AgentSQL(f"{{agent}}.id IN ({union})", params, BooleanField())


def search_agents(*, q: str, category: str | None = None, min_rating=None):
    """Listed agents matching q (all when q is blank) as cards with `score`; unordered.

    Only the SEARCH_CANDIDATES best-quality matches and the exact-name matches are there, so
    every ordering and page works on that bounded set (docs/search.md). Order and page them
    with `paginate_keyset(..., ordering=search_ordering(name))`.
    """
    q = clean_query(q)
    agents, score, quality = _matching(q=q, min_rating=min_rating)
    if category:
        agents = agents.in_category(category)
    candidates = _candidates(agents, quality=quality, q=q)
    return Agent.objects.filter(candidates).for_cards().annotate(score=Cast(score, FloatField()))


def search_facets(*, q: str, min_rating=None) -> list[dict]:
    """[{slug, name, count, capped}] of categories holding matches, most first (one query).

    Counts cover the first FACET_CAP + 1 matches found; `capped` (the same on every facet) says
    more matched, so each count is a lower bound. Without a rating filter, which agents match
    depends only on the catalog (their text, category and whether they are listed), not on
    installs or reviews: those facets are kept under the catalog namespace, so a search that a
    counter write retired recomputes its page but not its facets."""
    q = clean_query(q)
    if min_rating is None:
        digest = hashlib.sha256(q.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return response_cache.cached_value(
            caching.CATALOG_NS,
            "search-facets-capped",
            digest,
            ttl=caching.LISTS_TTL,
            compute=lambda: _facets(q=q, min_rating=None),
        )
    return _facets(q=q, min_rating=min_rating)


def _facets(*, q: str, min_rating) -> list[dict]:
    agents, _, _ = _matching(q=q, min_rating=min_rating)
    # No ORDER BY: the scan stops after FACET_CAP + 1 matches instead of sorting them all.
    counted, params = (
        agents.order_by().values("category_id")[: FACET_CAP + 1].query.sql_with_params()
    )
    category = connection.ops.quote_name(Category._meta.db_table)
    sql = (
        f"SELECT c.slug, c.name, m.n FROM (SELECT category_id, COUNT(*) AS n FROM ({counted})"  # noqa: S608
        f" AS counted GROUP BY category_id) AS m JOIN {category} AS c ON c.id = m.category_id"
        " ORDER BY m.n DESC, c.name"
    )
    with connections[replicas.read_alias()].cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    capped = sum(n for _, _, n in rows) > FACET_CAP
    return [{"slug": slug, "name": name, "count": n, "capped": capped} for slug, name, n in rows]


def _vocabulary() -> list[str]:
    """Lower-case words of listed agents' names and taglines (a few thousand at bench scale)."""
    words = set()
    for name, tagline in Agent.objects.listed().values_list("name", "tagline").iterator():
        words.update(w.lower() for w in _WORD.findall(f"{name} {tagline}") if len(w) > 2)
    return sorted(words)


def suggest_query(q: str) -> str | None:
    """q with misspelt words replaced by the closest words agents use ("Did you mean"), or None.

    For empty results: on SQLite, which has no typo tolerance, this is the only help a typo
    gets; on PostgreSQL it still catches typos the trigram threshold lets through.
    """
    words = _WORD.findall(clean_query(q).lower())
    if not words:
        return None
    vocabulary = response_cache.cached_value(
        caching.CATALOG_NS, "search-vocabulary", ttl=caching.LISTS_TTL, compute=_vocabulary
    )
    known = set(vocabulary)
    corrected = []
    for word in words:
        if word in known or len(word) < 3:
            corrected.append(word)
            continue
        close = difflib.get_close_matches(word, vocabulary, n=1, cutoff=0.75)
        corrected.append(close[0] if close else word)
    suggestion = " ".join(corrected)
    return suggestion if suggestion != " ".join(words) else None
