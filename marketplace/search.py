"""Agent search: the one place that picks the query by database backend.

    agents = search_agents(q="tranlator", category="productivity", min_rating=3)
    page = paginate_keyset(agents, ordering=search_ordering("relevance"), ...)
    facets = search_facets(q="tranlator", min_rating=3)

`search_agents` returns listed agents shaped for cards (`for_cards()`), annotated with
`score` (higher is better). Whatever the ordering, `score` is there to show; the exact-name-first
rule belongs to the relevance ordering (an explicit `-installs` sorts by installs).

PostgreSQL (schema from migration 0003_search):
- full text: `websearch_to_tsquery('english', q)` against the stored, GIN-indexed
  `search_vector` (name A > tagline B > tags C > description D), OR'ed with a prefix query for
  the last word (`transl` finds Translator while the user types);
- typos: `lower(name) %> lower(q)` (pg_trgm word similarity, threshold 0.45 set per connection
  in settings), served by the GIN trigram index on lower(name): `tranlator` finds Translator;
  left out when q holds a quoted phrase or an exclusion (`-word`), which ask for precision;
- score: an exact, case-insensitive name match first (+10, above any other blend), then
  `ts_rank + 0.5 * word_similarity`, scaled by quality: a Bayesian rating (prior 3.5 stars
  worth 5 reviews) and log installs, so quality reorders close matches but cannot lift an
  agent that barely matches above one that matches well.

SQLite (the embedded default) has neither, so a simpler matcher: every word of q (up to 8)
must occur in the name, tagline or description (case-insensitive for ASCII, no stemming and no
typo tolerance); per word a name hit counts 1, a tagline hit 0.5, a description hit 0.2; an
exact name match gets the same +10 and the same quality factor applies.

Facets (`search_facets`) count matches per category with every filter but the category
itself, so a page filtered to one category still shows how many matches the others hold
(the usual faceted-navigation choice; the selected category's count equals the result total).
"""

import difflib
import hashlib
import math
import re

from django.db import connection
from django.db.models import BooleanField, Case, Count, F, FloatField, Q, Value, When
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast, Least, Ln

from . import caching
from .managers import AGENT_ORDERINGS
from .models import Agent

MAX_QUERY_LENGTH = 200
MAX_WORDS = 8
RELEVANCE = "relevance"
SEARCH_ORDERINGS = (RELEVANCE, *AGENT_ORDERINGS)
EXACT_NAME_BONUS = 10.0
RATING_PRIOR, RATING_PRIOR_WEIGHT = 3.5, 5.0
INSTALLS_SCALE = math.log(100_001)  # log installs reaches 1 at 100k installs

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
    return ordering


def _quality():
    """1.0 for a top-rated, much-installed agent; 0.6 for an unknown one (PostgreSQL runs it as
    `_POSTGRES_QUALITY`)."""
    bayes = (
        Cast(F("rating_average"), FloatField()) * F("rating_count")
        + Value(RATING_PRIOR * RATING_PRIOR_WEIGHT)
    ) / (Cast(F("rating_count"), FloatField()) + Value(RATING_PRIOR_WEIGHT))
    installs = Least(
        Ln(Cast(F("install_count"), FloatField()) + Value(1.0)) / Value(INSTALLS_SCALE),
        Value(1.0),
    )
    return Value(0.6) + Value(0.25) * bayes / Value(5.0) + Value(0.15) * installs


def _exact_name(q: str):
    return Case(
        When(Q(name__iexact=q), then=Value(EXACT_NAME_BONUS)),
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


# `_quality()` in SQL: the same operations in the same order, so the same floats.
_POSTGRES_QUALITY = (
    "0.6 + 0.25 * (({agent}.rating_average * {agent}.rating_count"
    f" + {RATING_PRIOR * RATING_PRIOR_WEIGHT!r}) / ({{agent}}.rating_count::float8"
    f" + {RATING_PRIOR_WEIGHT!r})) / 5.0"
    f" + 0.15 * LEAST(LN({{agent}}.install_count::float8 + 1.0) / {INSTALLS_SCALE!r}, 1.0)"
)


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
        f"CASE WHEN UPPER({{agent}}.name::text) = UPPER(%s) THEN {EXACT_NAME_BONUS!r} ELSE 0.0 END"
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
    """(listed agents matching q and min_rating, their score expression); no category yet."""
    agents = Agent.objects.listed()
    if min_rating is not None:
        agents = agents.min_rating(min_rating)
    if connection.vendor == "postgresql":
        if not q:
            return agents, _AgentSQL(_POSTGRES_QUALITY, [], output_field=FloatField())
        match, score = _postgres_match_and_score(q)
        return agents.filter(match), score
    if not q:
        return agents, _quality()
    match, relevance = _sqlite_match_and_relevance(q)
    return agents.filter(match), _exact_name(q) + relevance * _quality()


def search_agents(*, q: str, category: str | None = None, min_rating=None):
    """Listed agents matching q (all when q is blank) as cards with `score`; unordered.

    Order and page them with `paginate_keyset(..., ordering=search_ordering(name))`.
    """
    agents, score = _matching(q=clean_query(q), min_rating=min_rating)
    if category:
        agents = agents.in_category(category)
    return agents.for_cards().annotate(score=Cast(score, FloatField()))


def search_facets(*, q: str, min_rating=None) -> list[dict]:
    """[{slug, name, count}] of categories holding matches, most matches first (one query).

    Without a rating filter, which agents match depends only on the catalog (their text,
    category and whether they are listed), not on installs or reviews: those facets are kept
    under the catalog namespace, so a search that a counter write retired recomputes its page
    but not its second scan of every match."""
    q = clean_query(q)
    if min_rating is None:
        digest = hashlib.sha256(q.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return caching.cached_value(
            caching.CATALOG_NS,
            "search-facets",
            digest,
            ttl=caching.LISTS_TTL,
            compute=lambda: _facets(q=q, min_rating=None),
        )
    return _facets(q=q, min_rating=min_rating)


def _facets(*, q: str, min_rating) -> list[dict]:
    agents, _ = _matching(q=q, min_rating=min_rating)
    rows = (
        agents.order_by()
        .values("category__slug", "category__name")
        .annotate(count=Count("id"))
        .order_by("-count", "category__name")
    )
    return [
        {"slug": r["category__slug"], "name": r["category__name"], "count": r["count"]}
        for r in rows
    ]


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
    vocabulary = caching.cached_value(
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
