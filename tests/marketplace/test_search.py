import math

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from aios.pagination import paginate_keyset
from marketplace import search
from marketplace.managers import quality
from marketplace.models import Agent, Installation
from marketplace.search import (
    SEARCH_ORDERINGS,
    SearchQueryTooLong,
    clean_query,
    search_agents,
    search_facets,
    search_ordering,
    suggest_query,
)
from tests.factories import AgentFactory, CategoryFactory, InstallationFactory, bulk_agents


@pytest.fixture
def catalogue(db):
    writing, code = CategoryFactory(name="Writing"), CategoryFactory(name="Code")
    return {
        "exact": AgentFactory(
            name="Translator",
            tagline="Plain translations",
            category=writing,
            rating_average=2.0,
            rating_count=3,
        ),
        "pro": AgentFactory(
            name="Translator Pro",
            tagline="Translates documents between languages",
            category=writing,
            rating_average=4.9,
            rating_count=500,
            install_count=90_000,
        ),
        "tagline": AgentFactory(
            name="Polyglot",
            tagline="A translator for chat messages",
            category=code,
            rating_average=4.0,
            rating_count=10,
        ),
        "description": AgentFactory(
            name="Helper",
            tagline="General help",
            description="Can also act as a translator in a pinch.",
            category=code,
        ),
        "other": AgentFactory(name="Code Reviewer", tagline="Reviews pull requests", category=code),
        "hidden": AgentFactory(name="Translator Old", tagline="Retired", is_active=False),
    }


def _ids(queryset, ordering="relevance"):
    page = paginate_keyset(queryset, ordering=search_ordering(ordering), cursor=None, page_size=100)
    return [a.pk for a in page.items]


def test_exact_name_match_comes_first_even_below_better_rated_matches(catalogue):
    ids = _ids(search_agents(q="translator"))
    assert ids[0] == catalogue["exact"].pk
    assert ids[1] == catalogue["pro"].pk


def test_exact_name_match_ignores_case(catalogue):
    assert _ids(search_agents(q="TRANSLATOR PRO"))[0] == catalogue["pro"].pk


def test_name_matches_rank_above_tagline_above_description(catalogue):
    ids = _ids(search_agents(q="translator"))
    assert ids.index(catalogue["pro"].pk) < ids.index(catalogue["tagline"].pk)
    assert ids.index(catalogue["tagline"].pk) < ids.index(catalogue["description"].pk)


def test_inactive_and_non_matching_agents_are_not_found(catalogue):
    ids = _ids(search_agents(q="translator"))
    assert catalogue["hidden"].pk not in ids
    assert catalogue["other"].pk not in ids


def test_every_result_carries_a_score_in_relevance_order(catalogue):
    page = paginate_keyset(
        search_agents(q="translator"), ordering=("score", "desc"), cursor=None, page_size=10
    )
    scores = [a.score for a in page.items]
    assert scores == sorted(scores, reverse=True)
    assert all(isinstance(s, float) for s in scores)


def test_category_filter_keeps_the_query(catalogue):
    code = catalogue["tagline"].category.slug
    ids = _ids(search_agents(q="translator", category=code))
    assert set(ids) == {catalogue["tagline"].pk, catalogue["description"].pk}


def test_min_rating_filters_search_results(catalogue):
    ids = _ids(search_agents(q="translator", min_rating=4.5))
    assert ids == [catalogue["pro"].pk]


@pytest.mark.parametrize("ordering", SEARCH_ORDERINGS)
@pytest.mark.parametrize("category", [None, "writing"])
def test_every_ordering_with_category_pages_through_all_matches(catalogue, ordering, category):
    agents = search_agents(q="translator", category=category)
    expected = set(agents.values_list("pk", flat=True))
    seen, cursor = [], None
    while True:
        page = paginate_keyset(
            agents, ordering=search_ordering(ordering), cursor=cursor, page_size=1
        )
        seen += [a.pk for a in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert sorted(seen) == sorted(expected)
    assert len(seen) == len(set(seen))
    assert expected  # the query itself still applies under every ordering


def test_facets_count_matches_per_category_regardless_of_category_filter(catalogue):
    facets = search_facets(q="translator")
    assert {f["slug"]: f["count"] for f in facets} == {"writing": 2, "code": 2}
    assert {f["name"] for f in facets} == {"Writing", "Code"}


def test_facets_respect_min_rating(catalogue):
    assert search_facets(q="translator", min_rating=4.5) == [
        {"slug": "writing", "name": "Writing", "count": 1, "capped": False}
    ]


def test_blank_query_lists_every_listed_agent(catalogue):
    assert len(_ids(search_agents(q=""))) == 5


def test_search_page_is_one_query(catalogue):
    agents = search_agents(q="translator", category="writing", min_rating=1)
    with CaptureQueriesContext(connection) as queries:
        page = paginate_keyset(agents, ordering=("score", "desc"), cursor=None, page_size=10)
        [(a.category.name, a.publisher.name, a.score) for a in page.items]
    assert len(queries) == 1


# (rating average, rating count, installs): unknown, loved, few ratings, the installs cap, past it.
QUALITY_SAMPLES = [
    (0.0, 0, 0),
    (4.8, 1_200, 45_000),
    (2.5, 3, 250_000),
    (5.0, 1, 100_000),
    (1.2, 40, 7),
]


def test_search_ranks_by_the_one_quality_formula_on_either_backend(db):
    agents = [
        AgentFactory(rating_average=rating, rating_count=count, install_count=installs)
        for rating, count, installs in QUALITY_SAMPLES
    ]
    formula = dict(Agent.objects.annotate(quality=quality()).values_list("pk", "quality"))
    # A blank search scores by quality alone: PostgreSQL reads the generated column compiled
    # from quality() by migration 0007, SQLite computes quality() in the query.
    ranked = {agent.pk: agent.score for agent in search_agents(q="")}
    assert ranked == formula  # the same operations in the same order: the same floats
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("SELECT id, search_quality FROM marketplace_agents")
            assert dict(cur.fetchall()) == formula
    for agent in agents:
        bayes = (agent.rating_average * agent.rating_count + 3.5 * 5) / (agent.rating_count + 5)
        installs = min(math.log(agent.install_count + 1) / math.log(100_001), 1.0)
        assert formula[agent.pk] == pytest.approx(0.6 + 0.25 * bayes / 5 + 0.15 * installs)


def test_search_results_can_filter_another_query(catalogue, user):
    # Inside a subquery Django renames the agents table; the search SQL must follow it.
    for key in ("pro", "tagline", "other"):
        InstallationFactory(user=user, agent=catalogue[key])
    matching = search_agents(q="translator", min_rating=1).values("pk")
    installed = Installation.objects.filter(user=user, agent__in=matching)
    assert {i.agent_id for i in installed} == {catalogue["pro"].pk, catalogue["tagline"].pk}


def test_query_length_is_limited():
    assert clean_query("  tr  ") == "tr"
    assert clean_query("x" * 200) == "x" * 200
    with pytest.raises(SearchQueryTooLong):
        clean_query("x" * 201)
    with pytest.raises(SearchQueryTooLong):
        search_agents(q="x" * 201)


def test_unknown_search_ordering_is_rejected():
    with pytest.raises(ValueError):
        search_ordering("-popularity")


def test_punctuation_only_query_does_not_fail(catalogue):
    assert _ids(search_agents(q="%_'\"")) == []


# --- PostgreSQL: full text and trigrams -----------------------------------------------------

WORDS = ["summarizer", "planner", "scheduler", "analyst", "coder", "tutor", "writer", "critic"]


@pytest.mark.postgres
def test_typo_finds_translator_agents(catalogue):
    ids = _ids(search_agents(q="tranlator"))
    assert catalogue["exact"].pk in ids
    assert catalogue["pro"].pk in ids
    assert catalogue["other"].pk not in ids


@pytest.mark.postgres
def test_transposed_letters_still_find_the_name(catalogue):
    assert catalogue["pro"].pk in _ids(search_agents(q="trnaslator"))


@pytest.mark.postgres
def test_prefix_of_the_last_word_matches_while_typing(catalogue):
    ids = _ids(search_agents(q="transl"))
    assert {catalogue["exact"].pk, catalogue["pro"].pk} <= set(ids)


@pytest.mark.postgres
def test_the_case_of_the_query_changes_no_score(catalogue):
    def scores(q):
        return [(a.pk, a.score) for a in search_agents(q=q).order_by("-score", "-pk")]

    assert scores("TRANLATOR") == scores("tranlator")
    assert scores("Translator Pro") == scores("translator pro")


@pytest.mark.postgres
def test_stemming_and_tags_are_searched(db):
    agent = AgentFactory(name="Quill", tagline="Drafting", tags=["copywriting", "seo"])
    assert _ids(search_agents(q="seo")) == [agent.pk]
    assert _ids(search_agents(q="drafts")) == [agent.pk]


@pytest.mark.postgres
def test_websearch_syntax_excludes_words(catalogue):
    ids = _ids(search_agents(q="translator -pro"))
    assert catalogue["pro"].pk not in ids
    assert catalogue["exact"].pk in ids


@pytest.mark.postgres
def test_search_uses_the_search_indexes(db):
    category = CategoryFactory()
    publisher = AgentFactory().publisher
    Agent.objects.bulk_create(
        Agent(
            name=f"Bulk {WORDS[i % len(WORDS)]} {i}",
            slug=f"bulk-agent-{i}",
            tagline=f"Does {WORDS[(i * 7) % len(WORDS)]} things",
            category=category,
            publisher=publisher,
        )
        for i in range(10_000)  # bench scale: at a few hundred rows a scan is rightly cheaper
    )
    with connection.cursor() as cur:
        # Rows inserted after CREATE INDEX wait in GIN's pending list (VACUUM's job, which
        # cannot run in a test transaction); flush it so the planner costs the real index.
        cur.execute("SELECT gin_clean_pending_list('agent_search_vector_idx'::regclass)")
        cur.execute("SELECT gin_clean_pending_list('agent_name_trgm_idx'::regclass)")
        cur.execute("ANALYZE marketplace_agents")
    agents = search_agents(q="tranlator")
    with CaptureQueriesContext(connection) as queries:
        list(agents.order_by("-score")[:20])
    with connection.cursor() as cur:
        cur.execute("EXPLAIN " + queries[0]["sql"])
        plan = "\n".join(row[0] for row in cur.fetchall())
    assert "agent_search_vector_idx" in plan, plan
    assert "agent_name_trgm_idx" in plan, plan
    assert "Seq Scan on marketplace_agents" not in plan, plan


@pytest.mark.parametrize(
    ("typed", "suggested"),
    [("tranlator", "translator"), ("polyglt chat", "polyglot chat"), ("translator", None)],
)
def test_suggestions_correct_misspelt_words_from_what_agents_say(catalogue, typed, suggested):
    assert suggest_query(typed) == suggested


def test_suggestions_ignore_inactive_agents(catalogue):
    assert suggest_query("retird") is None  # "Retired" is only in a hidden agent's tagline


# --- Bounded work: candidates and capped facets -----------------------------------------------


@pytest.fixture
def crowd(db):
    """25 listed agents matching "planner", of rising quality, and one exact, unknown "Planner"."""
    category = CategoryFactory(name="Planning")
    agents = [
        AgentFactory(
            name=f"Trip planner {i}",
            tagline="Plans trips",
            category=category,
            rating_average=4.0,
            rating_count=i,
            install_count=10 * i,
        )
        for i in range(25)
    ]
    exact = AgentFactory(name="Planner", tagline="Plans", category=CategoryFactory(name="Misc"))
    return {"agents": agents, "exact": exact}


def test_only_the_best_quality_candidates_and_exact_names_are_ranked(crowd, monkeypatch):
    monkeypatch.setattr(search, "SEARCH_CANDIDATES", 5)
    ids = _ids(search_agents(q="planner"))
    best = [a.pk for a in sorted(crowd["agents"], key=lambda a: -a.install_count)[:5]]
    assert ids[0] == crowd["exact"].pk  # an unknown agent, but named exactly as searched
    assert set(ids) == {crowd["exact"].pk, *best}


def test_every_ordering_pages_the_whole_bounded_set_once(crowd, monkeypatch):
    monkeypatch.setattr(search, "SEARCH_CANDIDATES", 7)
    agents = search_agents(q="planner")
    for ordering in SEARCH_ORDERINGS:
        seen, cursor = [], None
        while True:
            page = paginate_keyset(
                agents, ordering=search_ordering(ordering), cursor=cursor, page_size=3
            )
            seen += [a.pk for a in page.items]
            if (cursor := page.next_cursor) is None:
                break
        assert len(seen) == len(set(seen)) == 8, ordering  # 7 candidates + the exact name


def test_facets_count_up_to_the_cap_and_say_so(crowd, monkeypatch):
    assert {f["slug"]: (f["count"], f["capped"]) for f in search_facets(q="planner")} == {
        "planning": (25, False),
        "misc": (1, False),
    }
    monkeypatch.setattr(search, "FACET_CAP", 10)
    facets = search_facets(q="planner", min_rating=0)  # a rating filter is never cached
    assert sum(f["count"] for f in facets) == 11  # FACET_CAP + 1: enough to know more match
    assert all(f["capped"] for f in facets)


def test_a_small_catalogue_shows_exact_uncapped_facets(catalogue):
    assert not any(f["capped"] for f in search_facets(q="translator"))


@pytest.mark.postgres
def test_the_candidate_scan_is_bounded_by_a_limit(db, monkeypatch):
    monkeypatch.setattr(search, "SEARCH_CANDIDATES", 40)
    bulk_agents(
        2_000, name="Bulk planner", tagline="Plans things", each=lambda i: {"install_count": i}
    )
    agents = search_agents(q="planner")
    with CaptureQueriesContext(connection) as queries:
        page = paginate_keyset(agents, ordering=("score", "desc"), cursor=None, page_size=20)
    assert len(page.items) == 20
    with connection.cursor() as cur:
        cur.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + queries[0]["sql"])
        plan = cur.fetchone()[0][0]["Plan"]

    def nodes(node):
        yield node
        for child in node.get("Plans", []):
            yield from nodes(child)

    scans = [n for n in nodes(plan) if n.get("Relation Name") == "marketplace_agents"]
    # The scoring reads only candidates: fetched by id, at most the cap plus exact names.
    scored = [n for n in scans if n.get("Index Name") == "marketplace_agents_pkey"]
    assert scored and all(n["Actual Rows"] <= 40 for n in scored), plan
    limits = [n for n in nodes(plan) if n["Node Type"] == "Limit" and n.get("Plan Rows") == 40]
    assert limits and all(n["Actual Rows"] <= 40 for n in limits), plan


def test_search_facets_is_one_query(crowd, django_assert_num_queries):
    with django_assert_num_queries(1):  # cold: each test starts on an empty cache
        search_facets(q="planner")
