"""A real varnishd with the committed VCL (deploy/varnish/default.vcl) in front of gunicorn:
anonymous reads are kept at the edge, a write's purge reaches it before the write answers,
signed-in requests and answers that set a cookie are never shared, only allowed addresses
purge, and an edge that is down costs writes nothing."""

import http.server
import threading

import pytest
import requests

from bench.edge import Varnish, varnish_missing
from marketplace.models import Agent
from tests.helpers.admin_forms import agent_change_form
from tests.helpers.servers import AppServer, free_port, server_env, wait_for

from .conftest import TIMEOUT, csrf_token, session_cookies

# Every test transactional, so that pytest-django keeps them together: the servers start once.
pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def stack(django_db_setup, tmp_path_factory):
    """varnishd -> one gunicorn (two workers) that purges it."""
    reason = varnish_missing()
    if reason:
        pytest.skip(reason)
    tmp = tmp_path_factory.mktemp("edge")
    app = AppServer(env={}, log_path=tmp / "gunicorn.log")
    varnish = Varnish(app.port, directory=tmp / "varnish")
    app.env = server_env(
        tmp,
        EDGE_PURGE_URLS=varnish.url,
        TRUSTED_PROXIES="127.0.0.1/32",
        COUNTER_STALENESS="30",
        MONITORING_TOKEN="edge-test-monitoring",
    )
    with varnish:
        app.start()
        try:
            yield SimpleStack(app=app, varnish=varnish)
        finally:
            app.stop()


class SimpleStack:
    def __init__(self, *, app, varnish):
        self.app, self.varnish = app, varnish

    def get(self, path, **kwargs) -> requests.Response:
        return requests.get(self.varnish.url + path, timeout=TIMEOUT, **kwargs)


def test_a_write_purges_the_edge_before_it_answers_and_the_next_read_shows_it(stack, world):
    agent = world.agents[1]
    page = f"/agents/{agent.slug}/"
    first, second = stack.get(page), stack.get(page)
    assert (first.status_code, first.headers["X-Cache"]) == (200, "MISS")
    assert (second.status_code, second.headers["X-Cache"]) == (200, "HIT")  # from the edge
    assert agent.tagline in second.text
    assert "xkey" not in second.headers  # the keys are the edge's business
    # One copy for every anonymous visitor, whatever other cookies they carry; browsers are
    # still told that answers vary with cookies (signed in, they differ).
    other_cookie = stack.get(page, cookies={"csrftoken": "k" * 32})
    assert other_cookie.headers["X-Cache"] == "HIT"
    assert "Cookie" in {v.strip() for v in second.headers["Vary"].split(",")}

    # A staff edit through the edge (signed in: passed to the app), as the admin posts it.
    staff = requests.Session()
    staff.cookies.update(session_cookies(world.staff))
    change = f"/admin/marketplace/agent/{agent.pk}/change/"
    form = staff.get(stack.varnish.url + change, timeout=TIMEOUT)
    assert form.headers["X-Cache"] == "PASS"
    saved = staff.post(
        stack.varnish.url + change,
        data=agent_change_form(
            agent,
            tagline="Rewritten for the edge test",
            is_active="on",
            csrfmiddlewaretoken=csrf_token(form.text),
        ),
        headers={"Referer": stack.varnish.url + change},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert saved.status_code == 302, saved.text[:2000]
    assert Agent.objects.get(pk=agent.pk).tagline == "Rewritten for the edge test"

    after = stack.get(page)  # the very next anonymous read, no waiting
    assert (after.status_code, after.headers["X-Cache"]) == (200, "MISS")
    assert "Rewritten for the edge test" in after.text
    assert agent.tagline not in after.text
    api = stack.get(f"/api/v1/agents/{agent.pk}/", headers={"Accept": "application/json"})
    assert api.json()["tagline"] == "Rewritten for the edge test"


def test_a_signed_in_request_never_gets_the_shared_copy(stack, world):
    page = f"/agents/{world.agent.slug}/"
    stack.get(page)
    assert stack.get(page).headers["X-Cache"] == "HIT"
    cookies = session_cookies(world.owner)
    for _ in range(2):
        mine = stack.get(page, cookies=cookies)
        assert mine.headers["X-Cache"] == "PASS"
        assert "Log out" in mine.text and world.owner.username in mine.text
        assert mine.headers["Cache-Control"] == "private, max-age=0, must-revalidate"
    api = f"/api/v1/agents/{world.agent.pk}/"
    stack.get(api, headers={"Accept": "application/json"})
    token = {"Authorization": f"Token {world.tokens['owner']}", "Accept": "application/json"}
    for _ in range(2):
        answer = stack.get(api, headers=token)
        assert answer.headers["X-Cache"] == "PASS"
        assert answer.json()["is_installed"] is True  # the owner's own state, not the shared copy
    # ... and what they were answered never became the shared copy.
    anonymous = stack.get(page)
    assert anonymous.headers["X-Cache"] == "HIT" and "Log out" not in anonymous.text


def test_an_answer_that_sets_a_cookie_is_never_kept(stack, world):
    answers = [stack.get("/accounts/login/") for _ in range(3)]
    for answer in answers:
        assert "csrftoken" in answer.cookies
        assert answer.headers["X-Cache"] != "HIT"
    assert len({csrf_token(a.text) for a in answers}) == 3  # each made by the app for its asker


class _Backend(http.server.BaseHTTPRequestHandler):
    """Answers everything as marked for the edge, and sets a cookie on /cookie."""

    calls = 0

    def do_GET(self):
        type(self).calls += 1
        self.send_response(200)
        self.send_header("Cache-Control", "public, max-age=60, s-maxage=30")
        self.send_header("xkey", "lists")
        if self.path == "/cookie":
            self.send_header("Set-Cookie", "seen=1")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def test_the_vcl_keeps_no_cookie_answer_and_purges_only_for_its_purgers(tmp_path):
    if reason := varnish_missing():
        pytest.skip(reason)
    backend = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _Backend)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    try:
        with Varnish(backend.server_port, directory=tmp_path, purgers=("192.0.2.1",)) as edge:
            for _ in range(3):
                answer = requests.get(edge.url + "/cookie", timeout=TIMEOUT)
                assert answer.headers["X-Cache"] != "HIT" and answer.cookies["seen"] == "1"
            requests.get(edge.url + "/plain", timeout=TIMEOUT)
            assert requests.get(edge.url + "/plain", timeout=TIMEOUT).headers["X-Cache"] == "HIT"
            assert _Backend.calls == 4  # three cookie answers fetched each time, /plain once
            refused = requests.request(
                "PURGE", edge.url + "/", headers={"xkey-purge": "lists"}, timeout=TIMEOUT
            )
            assert refused.status_code == 403  # 127.0.0.1 is not in this edge's purgers
            assert requests.get(edge.url + "/plain", timeout=TIMEOUT).headers["X-Cache"] == "HIT"
    finally:
        backend.shutdown()
        backend.server_close()


def test_an_edge_that_is_down_costs_a_write_nothing_and_is_counted(stack, world):
    # Last in this module: it stops the module's varnishd.
    stack.varnish.__exit__(None, None, None)
    token = {"Authorization": f"Token {world.tokens['other']}"}
    for agent in world.agents[1:3]:
        written = requests.post(
            f"{stack.app.url}/api/v1/agents/{agent.pk}/reviews/",
            json={"rating": 3, "title": "While the edge is down", "body": "Still saved."},
            headers=token,
            timeout=TIMEOUT,
        )
        assert written.status_code == 201

    def failures():
        snapshot = requests.get(
            f"{stack.app.url}/api/v1/monitoring/",
            headers={"Authorization": "Bearer edge-test-monitoring"},
            timeout=TIMEOUT,
        ).json()
        return snapshot["metrics"]["edge_purge_failures"]

    wait_for(failures, timeout=10, what="the failed purges in the monitoring snapshot")
    metrics = requests.get(f"{stack.app.url}/metrics", timeout=TIMEOUT).text
    assert 'aios_edge_purges_total{result="failed"}' in metrics
    assert "did not purge" in stack.app.logs()
