"""Under concurrent writes the counters stay exact; a worker killed mid-load is replaced while
the other workers' requests succeed."""

import os
import random
import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.db import connection

from marketplace.models import Agent, Installation, Review
from marketplace.services import find_counter_drift
from tests.factories import UserFactory

from .conftest import REQUEST_TIMEOUT, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

# What each operation may answer; anything else (a 500 above all) is a failure.
ALLOWED = {
    "install": {200, 201},
    "uninstall": {204},
    "review": {201, 409},
    "edit-review": {200, 404},  # 404 while the user's review does not exist yet
    "delete-review": {204, 404},
}


def _call(base_url, token, op, agent_id, rating):
    url = f"{base_url}/api/v1/agents/{agent_id}/"
    headers = {"Authorization": f"Token {token}"}
    method, path, body = {
        "install": ("POST", "install/", None),
        "uninstall": ("DELETE", "install/", None),
        "review": ("POST", "reviews/", {"rating": rating, "title": "Parallel", "body": "x"}),
        "edit-review": ("PATCH", "reviews/mine/", {"rating": rating}),
        "delete-review": ("DELETE", "reviews/mine/", None),
    }[op]
    try:
        response = requests.request(
            method, url + path, json=body, headers=headers, timeout=REQUEST_TIMEOUT
        )
        return op, response.status_code
    except requests.RequestException as exc:
        return op, type(exc).__name__


def test_fifty_parallel_installs_uninstalls_and_reviews_keep_every_counter_exact(
    app_server, seeded
):
    server = app_server(API_WORKERS="3", API_THREADS="4", DATABASE_POOL_SIZE="4")
    from rest_framework.authtoken.models import Token

    users = [UserFactory(username=f"racer{n}") for n in range(10)]
    tokens = [Token.objects.create(user=user).key for user in users]
    agents = [agent.pk for agent in seeded.agents[:3]]
    rng = random.Random(8)
    calls = [
        (token, op, agent_id, rng.randint(1, 5))
        for token in tokens
        for agent_id in agents
        for op in (
            "install",
            "install",
            "uninstall",
            "install",
            "review",
            "review",
            "edit-review",
            "delete-review",
            "review",
        )
    ]
    rng.shuffle(calls)
    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(lambda c: _call(server.url, *c), calls))

    unexpected = [(op, status) for op, status in results if status not in ALLOWED[op]]
    assert not unexpected, Counter(unexpected)
    assert find_counter_drift() == []
    for agent in Agent.objects.filter(pk__in=agents):
        assert agent.install_count == Installation.objects.filter(agent=agent).count()
        assert agent.rating_count == Review.objects.filter(agent=agent, is_hidden=False).count()
    # The races really happened: both outcomes of the unique constraints were seen.
    seen = Counter(results)
    assert seen[("install", 201)] and seen[("install", 200)]
    assert seen[("review", 201)] and seen[("review", 409)]


def _sleeping_worker() -> int | None:
    """The gunicorn worker whose query is in pg_sleep right now (fault_urls names it)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT application_name FROM pg_stat_activity WHERE datname = current_database() "
            "AND query LIKE 'SELECT pg_sleep%%' AND state = 'active'"
        )
        row = cursor.fetchone()
    return int(row[0].rsplit("-", 1)[1]) if row else None


def test_a_worker_killed_mid_load_is_replaced_and_the_others_keep_serving(app_server, seeded):
    server = app_server(API_WORKERS="2", API_THREADS="2")
    workers = server.worker_pids()
    assert len(workers) == 2
    paths = ["/", "/api/v1/marketplace/categories/", f"/agents/{seeded.agent.slug}/"]
    results, stop = [], threading.Event()

    def load():
        n = 0
        while not stop.is_set():
            n += 1
            try:
                response = requests.get(server.url + paths[n % 3], timeout=REQUEST_TIMEOUT)
                results.append(response.status_code)
            except requests.RequestException as exc:
                results.append(type(exc).__name__)

    in_flight = {}

    def slow():
        in_flight["response"] = requests.get(
            server.url + "/faults/sleep/2000/", timeout=REQUEST_TIMEOUT
        )

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    slow_thread = threading.Thread(target=slow)
    slow_thread.start()
    busy = wait_for(_sleeping_worker, timeout=5, what="the slow request to reach a worker")
    victim = next(iter(workers - {busy}))
    os.kill(victim, signal.SIGKILL)
    replaced = wait_for(
        lambda: (pids := server.worker_pids()) - workers and len(pids) == 2 and pids,
        timeout=20,
        what="the master to start a replacement worker",
    )
    time.sleep(1)  # load on the new worker too
    stop.set()
    for thread in threads:
        thread.join(timeout=REQUEST_TIMEOUT)
    slow_thread.join(timeout=REQUEST_TIMEOUT)

    assert in_flight["response"].status_code == 200  # in flight on the other worker: served
    assert busy in replaced and victim not in replaced
    server_errors = [r for r in results if isinstance(r, int) and r >= 500]
    dropped = [r for r in results if not isinstance(r, int)]
    assert not server_errors, Counter(results)
    # Only requests in flight on the killed worker may be dropped: each load thread has at
    # most one in flight, and gthread workers accept (queue) more than their thread count.
    assert len(dropped) <= len(threads), Counter(results)
    assert results.count(200) >= 10, Counter(results)  # the load really ran
    for path in paths:  # and the service is whole again
        assert requests.get(server.url + path, timeout=REQUEST_TIMEOUT).status_code == 200
