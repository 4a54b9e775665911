"""`make bench-smoke` runs end to end, so the bench harness cannot rot between full runs.

It measures nothing that is asserted: speed targets live in bench/results/REPORT.md. What is
checked is that every section ran (or says plainly why not) and left a usable report.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(out)],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return out, json.loads((out / "results.json").read_text())


@pytest.mark.postgres
@pytest.mark.slow
def test_smoke_run_writes_the_report_and_every_figure(smoke):
    out, results = smoke
    assert results["smoke"] is True
    assert results["errors"] == {}
    assert set(results["sections"]) == {
        "query",
        "endpoints",
        "load",
        "compression",
        "memory",
        "workers",
        "edge",
    }
    report = (out / "REPORT.md").read_text()
    for heading in ("## Machine", "## Targets (issue 13", "## 1. Queries", "## 2. Endpoints"):
        assert heading in report
    assert results["machine"]["cores"] >= 1
    assert results["machine"]["postgresql"]


@pytest.mark.postgres
@pytest.mark.slow
def test_query_section_times_the_five_report_queries_and_saves_their_plans(smoke):
    out, results = smoke
    rows = results["sections"]["query"]["rows"]
    report_rows = [r["key"] for r in rows if r["report_row"]]
    assert report_rows == ["category", "installations", "featured", "search", "stats"]
    for row in rows:
        assert row["ours"]["median_ms"] > 0 and row["naive"]["median_ms"] > 0
        # The naive version really is naive: more statements than ours (N+1, COUNT).
        assert row["naive"]["queries"] > row["ours"]["queries"]
        plan = (out / "plans" / f"{row['key']}_ours.txt").read_text()
        assert "Execution Time" in plan
    naive_plan = (out / "plans" / "installations_naive.txt").read_text()
    assert "Seq Scan" in naive_plan  # index scans were off for the naive main query
    depth = results["sections"]["query"]["depth"]
    assert depth["deep_page"] > 1
    assert depth["cursor_deep_over_first"] > 0


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.skipif(not shutil.which("wrk"), reason="needs wrk (apt-get install -y wrk)")
def test_endpoint_and_load_sections_measure_against_the_floor(smoke):
    _, results = smoke
    rows = results["sections"]["endpoints"]["rows"]
    assert rows
    for row in rows:
        if "not_measured" in row:
            assert row["not_measured"]  # says why
            continue
        assert row["c1"]["floor"]["rps"] > 0
        assert row["c1"]["ours_warm"]["ratio_to_floor"] > 0
        assert row["cold"]["statuses"] == [200]
    load = results["sections"]["load"]
    if "not_measured" not in load:
        assert load["requests"] > 0
        # Review pairs are chosen so that no POST conflicts: any 4xx/5xx is a real error.
        assert load["status"]["s4xx"] == load["status"]["s5xx"] == 0, load["status"]
        assert load["cache"]["source"]
        assert load["floor"]["rps"] > 0 and load["ratio_to_floor"] > 0
        assert load["requests_by_op"]  # the mix's own count of requests per operation
    memory = results["sections"]["memory"]
    assert memory["workers"] and all(w["VmRSS_mb"] > 0 for w in memory["workers"])
    # Every POST of the write runs created something: no repeat, no conflict.
    for write in results["sections"]["endpoints"]["writes"]:
        assert write["statuses"]["s4xx"] == write["statuses"]["s5xx"] == 0, write["statuses"]
        assert write["c1"]["ours"]["ratio_to_floor"] > 0
    models = {r["model"]: r for r in results["sections"]["workers"]["rows"]}
    assert set(models) == {"sync", "gthread"}
    assert models["gthread"]["threads"] > 1
    assert all(r["rps"] > 0 and r["errors"] == 0 for r in models.values())


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.skipif(not shutil.which("wrk"), reason="needs wrk (apt-get install -y wrk)")
def test_edge_section_runs_the_mix_through_varnish_beside_the_app(smoke):
    out, results = smoke
    edge = results["sections"]["edge"]
    if "not_measured" in edge:
        assert "varnishd" in edge["not_measured"]  # says why
        return
    assert {r["target"] for r in edge["runs"]} == {"edge", "app"}
    for run in edge["runs"]:
        assert run["requests"] > 0 and run["errors"] == 0, run
    through = [r for r in edge["runs"] if r["target"] == "edge"]
    assert all(r["edge_hits"] > 0 and 0 < r["hit_ratio"] <= 1 for r in through)
    assert "## 3c. The edge cache" in (out / "REPORT.md").read_text()


# --- the harness's pure parts, on both backends ---------------------------------------------


def test_report_says_what_was_not_measured_instead_of_inventing_figures():
    from bench import report

    results = {
        "finished_at": "2026-01-01T00:00:00+00:00",
        "command": "python -m bench --sections query",
        "smoke": False,
        "machine": {},
        "sections": {"load": {"not_measured": "no endpoint of the mix exists yet"}},
        "errors": {"query": "Traceback ...\nRuntimeError: boom"},
    }
    results["targets"] = report.evaluate_targets(results)
    text = report.render(results)
    assert "Not measured: no endpoint of the mix exists yet." in text
    assert "Not measured: the harness failed in this section" in text
    assert "RuntimeError: boom" in text
    assert all(t["met"] is None for t in results["targets"])


def test_cache_hit_rate_comes_from_the_apps_counter_deltas():
    from bench import appmetrics

    def scrape(hits, misses):
        return (
            "# TYPE aios_cache_requests_total counter\n"
            f'aios_cache_requests_total{{namespace="lists",result="hit"}} {hits}\n'
            f'aios_cache_requests_total{{namespace="lists",result="miss"}} {misses}\n'
            f'aios_cache_requests_total{{namespace="user",result="miss"}} {misses}\n'
        )

    rate = appmetrics.hit_rate(scrape(10, 5), scrape(100, 15))
    assert rate["hits"] == 90 and rate["misses"] == 20  # 10 lists + 10 user misses
    assert rate["hit_rate"] == round(90 / 110, 4)
    assert rate["per_namespace"]["user"]["hit_rate"] == 0
    assert appmetrics.hit_rate(scrape(10, 5), scrape(10, 5)) is None  # no traffic: no rate


def test_review_pairs_of_the_mix_never_repeat_or_hit_an_existing_review(db):
    from bench.fixture import Fixture
    from bench.load import _review_pairs
    from tests.factories import AgentFactory, ReviewFactory, UserFactory

    users = UserFactory.create_batch(3)
    agents = AgentFactory.create_batch(4)
    ReviewFactory(user=users[0], agent=agents[0])
    fx = Fixture(
        category_slug="",
        categories_by_popularity=[],
        agent_id=agents[0].pk,
        agents_by_popularity=[a.pk for a in agents],
        user_id=users[0].pk,
        token="",
        search_term="",
        broad_term="",
        search_terms=[],
        load_user_ids=[u.pk for u in users],
        load_tokens=["a", "b", "c"],
    )
    user_indexes, agent_ids = _review_pairs(fx)
    pairs = [(users[i - 1].pk, a) for i, a in zip(user_indexes, agent_ids, strict=True)]
    assert len(pairs) == 3 * 4 - 1  # every free pair once, then no more
    assert len(set(pairs)) == len(pairs)
    assert (users[0].pk, agents[0].pk) not in pairs


def test_shared_and_per_user_hit_rates_split_a_mixed_namespace_by_the_mix_counts():
    from bench.load import scope_hit_rates

    per_namespace = {
        "lists": {"hits": 90, "misses": 10},  # shared reads only: exact
        "agent": {"hits": 80, "misses": 20},  # anonymous (shared) and signed-in (per user)
        "user": {"hits": 5, "misses": 5},  # per-user reads only: exact
    }
    sent = {"agent_detail": 80, "agent_detail_signed_in": 20, "agent_list": 100}
    sent["my_installations"] = 10
    scopes = {  # a namespace read by both scopes (the mix's own READ_SCOPES has none now)
        "agent_detail": ("agent", "shared"),
        "agent_detail_signed_in": ("agent", "per_user"),
        "agent_list": ("lists", "shared"),
        "my_installations": ("user", "per_user"),
    }
    rates = scope_hit_rates(per_namespace, sent, scopes)
    shared = rates["shared"]
    assert shared["namespaces"] == ["lists", "agent"] and shared["lookups"] == 180
    # At worst the 20 signed-in look-ups all hit, at best they all missed.
    assert shared["hit_rate_low"] == round((90 + 60) / 180, 4)
    assert shared["hit_rate_high"] == round((90 + 80) / 180, 4)
    assert shared["hit_rate_namespaces"] == round(170 / 200, 4)
    per_user = rates["per_user"]
    assert per_user["lookups"] == 30
    assert per_user["hit_rate_low"] == round(5 / 30, 4)
    assert per_user["hit_rate_high"] == round(25 / 30, 4)
