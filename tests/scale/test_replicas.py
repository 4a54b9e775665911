"""DATABASE_REPLICA_URLS against a real streaming replica: reads go to it, writes and what
depends on them to the primary; a paused, lagging or killed replica costs no stale read and
no 5xx (docs/scaling.md).

Which server ran a request's SQL is read from the servers' statement logs (the app's
connections carry their own application_name)."""

import random
import re
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from .conftest import DATABASE, PASSWORD, Watch

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


def token(key: str) -> dict:
    return {"Authorization": f"Token {key}"}


def ids(page: dict) -> list[int]:
    return [row["agent"]["id"] for row in page["results"]]


def installed(cluster, server, agent_id: int, token_key: str) -> int:
    """Rows on `server` (primary or replica) for this token's user and agent."""
    return server.query(
        "SELECT count(*) FROM agent_installations i JOIN authtoken_token t"
        " ON t.user_id = i.user_id WHERE i.agent_id = %s AND t.key = %s",
        (agent_id, token_key),
        database=DATABASE,
    )[0][0]


def test_reads_go_to_the_replica_and_writes_to_the_primary(replicated, cluster, server):
    agent = replicated.agents[1]
    other = token(replicated.tokens["other"])
    with Watch(cluster) as anonymous:
        assert server.get(f"/api/v1/agents/{agent}/").status_code == 200  # compiled statements
        assert server.get("/api/v1/marketplace/stats/").status_code == 200  # raw cursor
        assert server.get("/api/v1/agents/search/?q=agent").status_code == 200  # raw facets
        assert server.get("/agents/").status_code == 200  # a page
    with Watch(cluster) as signed_in:
        assert server.get("/api/v1/me/installations/", headers=other).status_code == 200
    for seen in (anonymous, signed_in):
        assert Watch.reads(seen.replica)
        assert Watch.reads(seen.primary) == []
    replica_sql = "\n".join(anonymous.replica + signed_in.replica)
    for table in ("marketplace_agents", "agent_reviews", "marketplace_category_stats",
                  "authtoken_token", "agent_installations"):  # fmt: skip
        assert f'"{table}"' in replica_sql

    with Watch(cluster) as write:
        response = server.post(
            f"/api/v1/agents/{replicated.agents[2]}/install/",
            headers=token(replicated.tokens["owner"]),
        )
    assert response.status_code == 201
    assert any(s.startswith('INSERT INTO "agent_installations"') for s in write.primary)
    assert write.replica == []  # a write reads what it decides on from the primary too


def test_the_writer_sees_their_install_at_once_while_others_read_the_paused_replica(
    replicated, cluster, server
):
    agent, owner = replicated.agents[3], replicated.tokens["owner"]
    cluster.pause_replay()
    with Watch(cluster) as writer:
        assert (
            server.post(f"/api/v1/agents/{agent}/install/", headers=token(owner)).status_code == 201
        )
        mine = server.get("/api/v1/me/installations/", headers=token(owner))
    assert agent in ids(mine.json())
    assert Watch.reads(writer.replica) == []  # the writer's floor is past the paused replay
    assert any('"agent_installations"' in s for s in Watch.reads(writer.primary))
    # The replica really is behind: it has not replayed the install.
    assert installed(cluster, cluster.replica, agent, owner) == 0
    assert installed(cluster, cluster.primary, agent, owner) == 1

    with Watch(cluster) as reader:
        theirs = server.get("/api/v1/me/installations/", headers=token(replicated.tokens["other"]))
    assert theirs.status_code == 200
    assert Watch.reads(reader.replica)  # another client is not held to the writer's floor
    assert Watch.reads(reader.primary) == []


def test_a_new_session_and_a_new_token_work_at_once_while_the_replica_is_paused(
    replicated, cluster, server
):
    cluster.pause_replay()
    browser = requests.Session()
    form = browser.get(server.url + "/accounts/login/", timeout=15)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    signed_in = browser.post(
        server.url + "/accounts/login/",
        data={"username": "newcomer", "password": PASSWORD, "csrfmiddlewaretoken": csrf},
        allow_redirects=False,
        timeout=15,
    )
    assert signed_in.status_code == 302
    # The new session exists on the primary only; its first page must find it.
    page = browser.get(server.url + "/me/agents/", allow_redirects=False, timeout=15)
    assert page.status_code == 200

    issued = server.post("/api/v1/auth/token/", json={"username": "newcomer", "password": PASSWORD})
    assert issued.status_code == 200
    new_token = issued.json()["token"]
    assert cluster.replica.query(
        "SELECT count(*) FROM authtoken_token WHERE key = %s", (new_token,), database=DATABASE
    ) == [(0,)]
    assert server.get("/api/v1/me/installations/", headers=token(new_token)).status_code == 200


def test_a_cache_fill_after_a_write_never_stores_what_the_paused_replica_still_shows(
    replicated, cluster, server
):
    agent = replicated.agents[4]
    reviews = f"/api/v1/agents/{agent}/reviews/"
    assert server.get(reviews).json()["results"] == []  # a copy made from the replica
    cluster.pause_replay()
    written = server.post(
        reviews,
        headers=token(replicated.tokens["owner"]),
        json={"rating": 5, "title": "Fresh from the primary", "body": "New."},
    )
    assert written.status_code == 201
    with Watch(cluster) as refill:
        first = server.get(reviews).json()["results"]  # the write retired the copy
    second = server.get(reviews).json()["results"]  # the new copy
    assert [r["title"] for r in first] == ["Fresh from the primary"]
    assert second == first
    # The refill read the primary: the replica would have answered without the review.
    assert Watch.reads(refill.replica) == []
    assert any('"agent_reviews"' in s for s in Watch.reads(refill.primary))
    assert cluster.replica.query(
        "SELECT count(*) FROM agent_reviews WHERE agent_id = %s", (agent,), database=DATABASE
    ) == [(0,)]
    # A copy whose namespaces no write touched is still filled from the replica.
    with Watch(cluster) as untouched:
        assert server.get(f"/api/v1/agents/{replicated.agents[5]}/").status_code == 200
    assert Watch.reads(untouched.replica)
    assert Watch.reads(untouched.primary) == []


def test_concurrent_installs_keep_every_counter_exact_on_both_servers(replicated, cluster, server):
    agents = replicated.agents[:3]
    calls = [
        (key, agent, method)
        for key in replicated.racers
        for agent in agents
        for method in ("POST", "POST", "DELETE", "POST", "DELETE", "POST")
    ]
    random.Random(15).shuffle(calls)

    def call(job):
        key, agent, method = job
        url = f"{server.url}/api/v1/agents/{agent}/install/"
        return requests.request(method, url, headers=token(key), timeout=15).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = Counter(pool.map(call, calls))
    assert set(statuses) <= {200, 201, 204}, statuses

    counts = (
        "SELECT a.id, a.install_count, (SELECT count(*) FROM agent_installations i"
        " WHERE i.agent_id = a.id) FROM marketplace_agents a WHERE a.id = ANY(%s) ORDER BY a.id"
    )
    on_primary = cluster.primary.query(counts, (agents,), database=DATABASE)
    assert all(stored == rows for _, stored, rows in on_primary), on_primary
    cluster.wait_for_replay()
    assert cluster.replica.query(counts, (agents,), database=DATABASE) == on_primary
    for agent_id, stored, _ in on_primary:
        assert server.get(f"/api/v1/agents/{agent_id}/").json()["install_count"] == stored


def test_a_replica_lagging_past_the_limit_is_skipped_until_it_catches_up(
    replicated, cluster, start_server
):
    strict = start_server(
        API_WORKERS="1", DATABASE_REPLICA_CHECK_INTERVAL="0.2", DATABASE_REPLICA_MAX_LAG="1"
    )
    cluster.pause_replay()
    moved = strict.post(
        f"/api/v1/agents/{replicated.agents[5]}/install/", headers=token(replicated.tokens["other"])
    )
    assert moved.status_code == 201  # the primary's WAL moves on without the replica
    strict.wait_for_replica("lagging", answers=1)
    with Watch(cluster) as lagging:
        assert strict.get(f"/api/v1/agents/{replicated.agents[1]}/?lagging").status_code == 200
    assert Watch.reads(lagging.replica) == []
    assert Watch.reads(lagging.primary)

    cluster.resume_replay()
    strict.wait_for_replica("healthy", answers=1)
    with Watch(cluster) as caught_up:
        assert strict.get(f"/api/v1/agents/{replicated.agents[1]}/?caught-up").status_code == 200
    assert Watch.reads(caught_up.replica)
    assert Watch.reads(caught_up.primary) == []


def test_killing_the_replica_mid_load_answers_every_request(replicated, cluster, server):
    """Last (it kills the replica; `cluster` starts it again). The check interval is the
    default's; prints what it measured."""
    served = server
    other = token(replicated.tokens["other"])
    agents = replicated.agents
    stop = threading.Event()
    results, lock = [], threading.Lock()

    def load(worker: int):
        rng = random.Random(worker)
        while not stop.is_set():
            n = rng.randrange(1_000_000)  # a query no copy answers: every request reads
            path, headers = rng.choice(
                [
                    (f"/api/v1/agents/{rng.choice(agents)}/?n={n}", {}),
                    (f"/api/v1/agents/search/?q=agent&n={n}", {}),
                    (f"/api/v1/marketplace/stats/?n={n}", {}),
                    (f"/api/v1/me/installations/?n={n}", other),
                    (f"/agents/?n={n}", {}),
                ]
            )
            started = time.monotonic()
            try:
                outcome = served.get(path, headers=headers).status_code
            except requests.RequestException as exc:
                outcome = type(exc).__name__
            with lock:
                results.append((started, time.monotonic() - started, outcome))

    with ThreadPoolExecutor(max_workers=6) as pool:
        for worker in range(6):
            pool.submit(load, worker)
        try:
            time.sleep(1.5)
            with Watch(cluster) as before:
                time.sleep(0.5)
            killed_at = time.monotonic()
            cluster.replica.stop("immediate")
            served.wait_for_replica("down", answers=1, timeout=15)
            first_noticed = time.monotonic() - killed_at
            served.wait_for_replica("down", answers=6, timeout=15)
            noticed = time.monotonic() - killed_at
            with Watch(cluster) as after:
                time.sleep(1.5)
        finally:
            stop.set()

    outcomes = Counter(outcome for _, _, outcome in results)
    failed = {o: n for o, n in outcomes.items() if not isinstance(o, int) or o >= 500}
    assert failed == {}, outcomes
    assert Watch.reads(before.replica)  # it was in use
    assert Watch.reads(after.primary)  # and the primary took its reads
    assert Watch.reads(after.replica) == []
    retried = sum(
        float(line.rsplit(" ", 1)[1])
        for line in served.get("/metrics").text.splitlines()
        if line.startswith("aios_db_replica_retries_total{")
    )
    around = [seconds for at, seconds, _ in results if killed_at - 1 <= at <= killed_at + noticed]
    print(
        f"\nreplica killed under load: {len(results)} requests, {outcomes}; "
        f"a worker reported it down {first_noticed:.2f} s after the kill, six answers in a row "
        f"{noticed:.2f} s after; "
        f"{retried:.0f} reads retried on the primary; slowest request around the kill "
        f"{max(around, default=0) * 1000:.0f} ms"
    )
