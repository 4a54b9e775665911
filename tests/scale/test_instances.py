"""Two gunicorn instances behind HAProxy (deploy/haproxy/haproxy.cfg), round-robin per request:
sessions, CSRF, tokens, throttles, monitoring and cache invalidation work whichever instance
answers, and each instance's per-process near copy (Redis client tracking) stays exact after
a write through the other. Each answer names its instance (X-Served-By), so every test checks
that its steps really crossed from one instance to the other."""

from pathlib import Path

import pytest
import redis
import requests
from django.conf import settings

from aios import response_cache
from tests.helpers.seeded_world import PASSWORD
from tests.helpers.servers import HAPROXY, AppServer, HAProxy, server_env, stop_all, wait_for

from .conftest import TIMEOUT, csrf_token, sign_in

# Every test transactional, so that pytest-django keeps them together: the module's servers
# start once.
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

MONITORING = {"Authorization": "Bearer instances-test-monitoring"}
JSON = {"Accept": "application/json"}


@pytest.fixture(scope="module")
def pair(django_db_setup, tmp_path_factory):
    """HAProxy -> web-1, web-2: one worker each, sharing the database, Redis and the secret."""
    if not Path(HAPROXY).exists():
        pytest.skip("haproxy is not installed (apt-get install haproxy)")
    tmp = tmp_path_factory.mktemp("instances")
    common = {
        "API_WORKERS": "1",
        "TRUSTED_PROXIES": "127.0.0.1/32",
        "COUNTER_STALENESS": "0",  # installs show at once: exactness is what is checked
        "MONITORING_TOKEN": MONITORING["Authorization"].split()[1],
        "MONITORING_REPORT_INTERVAL": "0.2",
        "LOGIN_FAILURES_PER_ACCOUNT": "3",
        "API_THROTTLE_SEARCH": "3/min",
    }
    servers = [
        AppServer(
            env=server_env(tmp / f"web-{n}", **common), log_path=tmp / f"gunicorn-{n}.log"
        ).start(wait=False)
        for n in (1, 2)
    ]
    try:
        for server in servers:
            server.wait_ready()
        with HAProxy([f"127.0.0.1:{s.port}" for s in servers], log_path=tmp / "haproxy.log") as lb:
            # Both instances in the rotation (health-checked up) before any test starts.
            wait_for(
                lambda: {served_by(requests.get(lb.url + "/healthz", timeout=TIMEOUT))
                         for _ in range(4)} == {"web-1", "web-2"},
                timeout=15,
                what="both instances behind haproxy",
            )  # fmt: skip
            yield lb
    finally:
        stop_all(servers)


def served_by(response: requests.Response) -> str:
    return response.headers["X-Served-By"]


def test_requests_take_turns_across_the_instances(pair):
    answers = [requests.get(pair.url + "/healthz", timeout=TIMEOUT) for _ in range(4)]
    order = [served_by(a) for a in answers]
    assert sorted(order) == ["web-1", "web-1", "web-2", "web-2"]
    assert order[0] != order[1] and order[1] != order[2]


def test_sign_in_on_one_instance_then_post_a_form_on_the_other(pair, world):
    browser = requests.Session()
    steps = sign_in(browser, pair.url, world.other.username)
    assert steps.signed_in.status_code == 302, steps.signed_in.text[:500]
    # The form came from one instance, the sign-in (its CSRF token checked) from the other.
    assert served_by(steps.form) != served_by(steps.signed_in)

    agent = world.agents[2]
    page = browser.get(f"{pair.url}/agents/{agent.slug}/", timeout=TIMEOUT)
    assert page.status_code == 200 and "Log out" in page.text  # the session, elsewhere
    installed = browser.post(
        f"{pair.url}/agents/{agent.slug}/install/",
        data={"csrfmiddlewaretoken": csrf_token(page.text)},
        headers={"Referer": f"{pair.url}/agents/{agent.slug}/"},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert installed.status_code == 302, installed.text[:500]
    assert served_by(page) != served_by(installed)
    assert world.other.installations.filter(agent=agent).exists()
    mine = [browser.get(f"{pair.url}/me/agents/", timeout=TIMEOUT) for _ in range(2)]
    assert {served_by(m) for m in mine} == {"web-1", "web-2"}
    assert all(agent.name in m.text for m in mine)


def test_a_token_from_one_instance_works_on_both(pair, world):
    issued = requests.post(
        f"{pair.url}/api/v1/auth/token/",
        json={"username": world.owner.username, "password": PASSWORD},
        timeout=TIMEOUT,
    )
    assert issued.status_code == 200
    auth = {"Authorization": f"Token {issued.json()['token']}", **JSON}
    answers = [
        requests.get(f"{pair.url}/api/v1/me/installations/", headers=auth, timeout=TIMEOUT)
        for _ in range(2)
    ]
    assert [a.status_code for a in answers] == [200, 200]
    assert {served_by(a) for a in answers} == {"web-1", "web-2"}
    assert {served_by(issued)} < {served_by(a) for a in answers}


def test_throttles_count_across_the_instances_per_client(pair, world):
    def attempt(username, *, right=False, client="203.0.113.5"):
        return requests.post(
            f"{pair.url}/api/v1/auth/token/",
            json={"username": username, "password": PASSWORD if right else "wrong"},
            headers={"X-Forwarded-For": client},
            timeout=TIMEOUT,
        )

    # LOGIN_FAILURES_PER_ACCOUNT = 3: failures on both instances add up.
    failures = [attempt(world.staff.username) for _ in range(3)]
    assert [f.status_code for f in failures] == [400, 400, 400]
    refused = [attempt(world.staff.username, right=True) for _ in range(2)]
    assert [r.status_code for r in refused] == [429, 429]
    assert {served_by(r) for r in refused} == {"web-1", "web-2"}

    # API_THROTTLE_SEARCH = 3/min per client address: the address behind the proxy counts.
    def search(client):
        return requests.post(
            f"{pair.url}/api/v1/agents/search/",
            json={"q": "agent"},
            headers={"X-Forwarded-For": client, **JSON},
            timeout=TIMEOUT,
        )

    answers = [search("198.51.100.20") for _ in range(5)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    assert {served_by(a) for a in answers[3:]} == {"web-1", "web-2"}
    assert search("198.51.100.21").status_code == 200  # another client, same proxy


def test_the_monitoring_snapshot_adds_up_both_instances_on_either(pair, world):
    for _ in range(10):
        requests.get(f"{pair.url}/api/v1/marketplace/agents/", headers=JSON, timeout=TIMEOUT)

    def snapshots():
        answers = [
            requests.get(f"{pair.url}/api/v1/monitoring/", headers=MONITORING, timeout=TIMEOUT)
            for _ in range(2)
        ]
        if {served_by(a) for a in answers} != {"web-1", "web-2"}:
            return None
        bodies = [a.json() for a in answers]
        if all(b["workers"] == 2 and b["metrics"]["request_count"] >= 10 for b in bodies):
            return bodies
        return None

    bodies = wait_for(snapshots, timeout=10, interval=0.3, what="both workers in both snapshots")
    assert all(b["available"] for b in bodies)


def _tracking_clients(db: int) -> int:
    """Connections to this test's Redis database with client tracking on (near copies)."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    return sum(1 for c in client.client_list() if int(c["db"]) == db and "t" in c.get("flags", ""))


def test_a_write_through_one_instance_is_seen_at_once_through_the_other(pair, world):
    agent = world.agents[3]
    url = f"{pair.url}/api/v1/agents/{agent.pk}/"
    page = f"{pair.url}/agents/{agent.slug}/"
    for _ in range(4):
        requests.get(page, timeout=TIMEOUT)
    warm = [requests.get(url, headers=JSON, timeout=TIMEOUT) for _ in range(6)]
    assert {served_by(w) for w in warm} == {"web-1", "web-2"}
    before = warm[-1].json()["install_count"]
    assert all(w.json()["install_count"] == before for w in warm)
    # Each instance's worker keeps an exact near copy of hot keys: two tracking connections
    # beside any this test process opened itself.
    near = response_cache.store().near
    own = 1 if near is not None and near.active else 0
    db = int(settings.REDIS_URL.rsplit("/", 1)[1])
    assert _tracking_clients(db) >= 2 + own

    token = {"Authorization": f"Token {world.tokens['staff']}"}
    installed = requests.post(f"{url}install/", headers=token, timeout=TIMEOUT)
    assert installed.status_code == 201
    after = [requests.get(url, headers=JSON, timeout=TIMEOUT) for _ in range(2)]
    assert {served_by(a) for a in after} == {"web-1", "web-2"}
    assert [a.json()["install_count"] for a in after] == [before + 1, before + 1]

    # Content too: a review's text shows on both at once.
    reviewed = requests.post(
        f"{url}reviews/",
        json={"rating": 5, "title": "Seen everywhere", "body": "At once."},
        headers=token,
        timeout=TIMEOUT,
    )
    assert reviewed.status_code == 201
    pages = [requests.get(page, timeout=TIMEOUT) for _ in range(2)]
    assert {served_by(p) for p in pages} == {"web-1", "web-2"}
    assert all("Seen everywhere" in p.text for p in pages)
    assert all("Log out" not in p.text for p in pages)
