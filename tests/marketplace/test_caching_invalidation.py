"""Every write path x every cached read, on the site's real URLs (aios.urls).

Each case warms every cached read (API and pages, anonymous, by token, by session), makes
one write the way the site makes it (an API call, a page form, an admin change form or
action, a bulk service call, a management command), and then reads everything again: each
read must answer exactly what its view computes with caching off, so the writer's next read
shows the write (read-your-writes) and so does everybody else's. Some read must change, or
the write proved nothing.

Runs twice: on real Redis (`redis`, as in CI) and on the file cache (the embedded default).
"""

from html.parser import HTMLParser
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse
from rest_framework.authtoken.models import Token

from knowledge.models import KnowledgeEntry
from marketplace import services
from marketplace.models import Agent, Installation, Review
from tests.factories import CategoryFactory
from tests.helpers.cached_reads import World, content, truth
from tests.helpers.clock import skip_ahead

pytestmark = pytest.mark.django_db

User = get_user_model()


def warm(w) -> dict:
    seen = {}
    for name, url in w.reads():
        # A signed-in page is stored from the 3rd request (CSRF cookie, then whose it is).
        for _ in range(4):
            response = w.client(name).get(url)
        seen[(name, url)] = content(response)
    return seen


# --- Writes ----------------------------------------------------------------------------------


class FormFields(HTMLParser):
    """The fields a browser would submit from the page's main form (admin change forms)."""

    def __init__(self):
        super().__init__()
        self.data: dict[str, list[str]] = {}
        self._select = self._textarea = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        name = a.get("name")
        if tag == "input" and name and a.get("type") not in ("submit", "file", "button"):
            if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                return
            default = "on" if a.get("type") in ("checkbox", "radio") else ""
            self.data.setdefault(name, []).append(a.get("value") or default)
        elif tag == "select" and name:
            self._select = name
            self.data.setdefault(name, [])
        elif tag == "option" and self._select and "selected" in a:
            self.data[self._select].append(a.get("value") or "")
        elif tag == "textarea" and name:
            self._textarea = name
            self.data[name] = [""]

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._textarea:
            self.data[self._textarea][0] += (
                data.lstrip("\n") if not self.data[self._textarea][0] else data
            )


def admin_url(model, action, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{action}", args=args)


def admin_submit(w, model, obj=None, **changes):
    """Open the admin's change (or add) form, change some fields, save it, as staff would."""
    url = admin_url(model, "change", obj.pk) if obj else admin_url(model, "add")
    parser = FormFields()
    parser.feed(w.admin.get(url).content.decode())
    data = {k: v for k, v in parser.data.items() if k != "csrfmiddlewaretoken"}
    data.update({k: v if isinstance(v, list) else [str(v)] for k, v in changes.items()})
    data["_save"] = ["Save"]
    response = w.admin.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]


def admin_action(w, model, action, objs):
    response = w.admin.post(
        admin_url(model, "changelist"),
        {"action": action, "_selected_action": [str(o.pk) for o in objs], "post": "yes"},
    )
    assert response.status_code == 302


def admin_delete(w, model, obj):
    response = w.admin.post(admin_url(model, "delete", obj.pk), {"post": "yes"})
    assert response.status_code == 302


def ok(response, *codes):
    assert response.status_code in (codes or (200, 201, 204, 302)), response.content[:500]


def api_json(client, method, url, data=None):
    return getattr(client, method)(url, data or {}, content_type="application/json")


def _installed(w):
    services.install_agent(user=w.writer, agent=w.agent)


def _reviewed(w):
    services.create_review(user=w.writer, agent=w.agent, rating=4, title="Good")


def _featured(w):
    services.set_agents_flag(agent_ids=[w.agent.pk], is_featured=True)


def _carol_installed_and_reviewed(w):
    services.install_agent(user=w.carol, agent=w.agent)
    services.create_review(user=w.carol, agent=w.agent, rating=2, title="Meh")


def _writer_installed_alpha_and_gamma(w):
    services.install_agent(user=w.writer, agent=w.agent)
    services.install_agent(user=w.writer, agent=w.featured)


def _drifted(w):
    Installation.objects.create(user=w.carol, agent=w.agent)  # behind the counters' back


def _reviews_url(w, suffix=""):
    return f"/api/v1/agents/{w.agent.pk}/reviews/{suffix}"


def _page(w, suffix=""):
    return f"/agents/{w.agent.slug}/{suffix}"


# name: (prepare or None, write). Every write goes through the site's own entry points.
WRITES = {
    # --- services through the API (writer's token) ---
    "api install": (None, lambda w: ok(w.api.post(f"/api/v1/agents/{w.agent.pk}/install/"))),
    "api uninstall": (
        _installed,
        lambda w: ok(w.api.delete(f"/api/v1/agents/{w.agent.pk}/install/")),
    ),
    "api create review": (
        None,
        lambda w: ok(api_json(w.api, "post", _reviews_url(w), {"rating": 5, "title": "Great"})),
    ),
    "api replace review": (
        _reviewed,
        lambda w: ok(api_json(w.api, "put", _reviews_url(w, "mine/"), {"rating": 1})),
    ),
    "api edit review title": (
        _reviewed,
        lambda w: ok(api_json(w.api, "patch", _reviews_url(w, "mine/"), {"title": "Changed"})),
    ),
    "api delete review": (_reviewed, lambda w: ok(w.api.delete(_reviews_url(w, "mine/")))),
    # --- somebody else's writes to agents the writer has installed ---
    "carol installs alpha": (
        _writer_installed_alpha_and_gamma,
        lambda w: services.install_agent(user=w.carol, agent=w.agent),
    ),
    "carol reviews the featured agent": (
        _writer_installed_alpha_and_gamma,
        lambda w: services.create_review(user=w.carol, agent=w.featured, rating=1),
    ),
    "carol uninstalls the featured agent": (
        lambda w: services.install_agent(user=w.carol, agent=w.featured),
        lambda w: services.uninstall_agent(user=w.carol, agent=w.featured),
    ),
    # --- services through the pages (writer's session) ---
    "page install": (None, lambda w: ok(w.web.post(_page(w, "install/")))),
    "page uninstall": (_installed, lambda w: ok(w.web.post(_page(w, "uninstall/")))),
    "page create review": (
        None,
        lambda w: ok(w.web.post(_page(w, "review/"), {"rating": 3, "title": "Fine"})),
    ),
    "page edit review": (
        _reviewed,
        lambda w: ok(w.web.post(_page(w, "review/edit/"), {"rating": 5, "title": "Better"})),
    ),
    "page delete review": (_reviewed, lambda w: ok(w.web.post(_page(w, "review/delete/")))),
    # --- admin change forms ---
    "admin edits agent": (
        None,
        lambda w: admin_submit(w, Agent, w.agent, name="Alpha Prime", tagline="Now better"),
    ),
    "admin features agent in its form": (
        None,
        lambda w: admin_submit(w, Agent, w.agent, is_featured="on"),
    ),
    "admin moves agent to a new category": (
        None,
        lambda w: admin_submit(w, Agent, w.agent, category=CategoryFactory(name="Fresh").pk),
    ),
    "admin adds agent": (
        None,
        lambda w: admin_submit(
            w,
            Agent,
            name="Alphabet",
            slug="alphabet",
            tagline="Also alpha",
            category=w.category.pk,
            publisher=w.publisher.pk,
        ),
    ),
    "admin deletes other agent": (None, lambda w: admin_delete(w, Agent, w.other)),
    "admin renames category": (
        None,
        lambda w: admin_submit(w, type(w.category), w.category, name="Prose"),
    ),
    "admin renames publisher": (
        None,
        lambda w: admin_submit(w, type(w.publisher), w.publisher, name="Acme Labs"),
    ),
    "admin edits review text": (
        _reviewed,
        lambda w: admin_submit(w, Review, w.review(), title="Edited by staff"),
    ),
    "admin renames the reviewer": (
        _reviewed,
        lambda w: admin_submit(w, User, w.writer, username="writer2"),
    ),
    "admin edits knowledge entry": (
        None,
        lambda w: admin_submit(w, KnowledgeEntry, w.entry, title="Staff notes"),
    ),
    "admin deactivates the writer": (
        _installed,
        lambda w: admin_submit(w, User, w.writer, is_active=[]),
    ),
    "admin deletes a user with an install and a review": (
        _carol_installed_and_reviewed,
        lambda w: admin_delete(w, User, w.carol),
    ),
    # --- admin actions ---
    "admin action feature": (None, lambda w: admin_action(w, Agent, "feature", [w.agent])),
    "admin action unfeature": (
        _featured,
        lambda w: admin_action(w, Agent, "unfeature", [w.agent]),
    ),
    "admin action deactivate": (None, lambda w: admin_action(w, Agent, "deactivate", [w.agent])),
    "admin action hide review": (
        _reviewed,
        lambda w: admin_action(w, Review, "hide", [w.review()]),
    ),
    "admin action delete reviews": (
        _reviewed,
        lambda w: admin_action(w, Review, "delete_selected", [w.review()]),
    ),
    "admin action delete installations": (
        _installed,
        lambda w: admin_action(
            w, Installation, "delete_selected", Installation.objects.filter(user=w.writer)
        ),
    ),
    # --- bulk updates, commands, plain ORM deletes ---
    "bulk feature (set_agents_flag)": (None, _featured),
    "bulk deactivate other (set_agents_flag)": (
        None,
        lambda w: services.set_agents_flag(agent_ids=[w.other.pk], is_active=False),
    ),
    "recount one agent (command)": (
        _drifted,
        lambda w: call_command("recount", "--agent", w.agent.slug, stdout=StringIO()),
    ),
    "recount all (command)": (_drifted, lambda w: call_command("recount", stdout=StringIO())),
    "seed_demo --replace": (
        None,
        lambda w: call_command(
            "seed_demo", "--scale", "20", "--replace", "--no-progress", stdout=StringIO()
        ),
    ),
    "user deleted (ORM)": (_carol_installed_and_reviewed, lambda w: w.carol.delete()),
    "writer's token deleted": (None, lambda w: Token.objects.filter(user=w.writer).delete()),
    "writer logs out": (None, lambda w: ok(w.web.post("/accounts/logout/"))),
    # --- knowledge CRUD ---
    "api create knowledge entry": (
        None,
        lambda w: ok(
            api_json(
                w.api,
                "post",
                "/api/v1/knowledge/entries/",
                {"title": "New", "content_type": "note"},
            )
        ),
    ),
    "api edit knowledge entry": (
        None,
        lambda w: ok(
            api_json(w.api, "patch", f"/api/v1/knowledge/entries/{w.entry.pk}/", {"title": "X"})
        ),
    ),
    "api delete knowledge entry": (
        None,
        lambda w: ok(w.api.delete(f"/api/v1/knowledge/entries/{w.entry.pk}/")),
    ),
    "page create knowledge entry": (
        None,
        lambda w: ok(
            w.web.post("/knowledge/new/", {"title": "From page", "content_type": "note"}), 302
        ),
    ),
    "page edit knowledge entry": (
        None,
        lambda w: ok(
            w.web.post(
                f"/knowledge/{w.entry.pk}/edit/",
                {"title": "Edited", "content_type": "note", "body": "b"},
            ),
            302,
        ),
    ),
    "page delete knowledge entry": (
        None,
        lambda w: ok(w.web.post(f"/knowledge/{w.entry.pk}/delete/"), 302),
    ),
}


# Writes that only move counters (installs, ratings), by whose hand: with COUNTER_STALENESS
# above 0, what others read may show the old counters for that long; the writer never does.
# A review's text also shows on its agent's pages, which are therefore never behind.
COUNTER_WRITES = {
    "api install": "writer",
    "api uninstall": "writer",
    "api create review": "writer",
    "api replace review": "writer",
    "api delete review": "writer",
    "carol installs alpha": "carol",
    "carol reviews the featured agent": "carol",
    "carol uninstalls the featured agent": "carol",
    "page install": "writer",
    "page uninstall": "writer",
    "page create review": "writer",
    "page edit review": "writer",
    "page delete review": "writer",
    "admin action hide review": "staff",
    "admin action delete reviews": "staff",
    "admin action delete installations": "staff",
}
REVIEW_WRITES = {name for name in COUNTER_WRITES if "review" in name}


@pytest.fixture(params=[0, 30], ids=["never-stale", "staleness-30"])
def staleness(request, settings):
    settings.COUNTER_STALENESS = request.param
    return request.param


def may_lag(w, write_name: str, reader: str, url: str) -> bool:
    actor = COUNTER_WRITES.get(write_name)
    if actor is None or (actor == "writer" and reader in ("api", "web")):
        return False  # a content write, or the writer's own read
    agent_page = f"/agents/{w.agent.pk}/" in url or f"/agents/{w.agent.slug}/" in url
    return not (write_name in REVIEW_WRITES and agent_page)


@pytest.mark.parametrize("write_name", list(WRITES))
def test_every_cached_read_is_fresh_after_every_write(
    write_name, cache_backend, staleness, monkeypatch, django_capture_on_commit_callbacks
):
    prepare, write = WRITES[write_name]
    w = World()
    if prepare:
        with django_capture_on_commit_callbacks(execute=True):
            prepare(w)
    before = warm(w)
    with django_capture_on_commit_callbacks(execute=True):
        write(w)
    for name in ("web", "admin"):
        w.client(name).cookies.pop("messages", None)  # else the next page bypasses the cache
    changed, lagging = [], []
    for name, url in w.reads():
        client = w.client(name)
        seen, fresh = content(client.get(url)), truth(client, url)
        if seen != fresh and staleness and may_lag(w, write_name, name, url):
            assert seen == before[(name, url)], (name, url)  # the old copy, not a mix
            lagging.append((name, url))
            continue
        assert seen == fresh, (name, url)
        if seen != before[(name, url)]:
            changed.append((name, url))
    assert changed or lagging, "the write showed in no read: the case proves nothing"
    if lagging:  # ... for COUNTER_STALENESS seconds at most
        skip_ahead(monkeypatch, staleness + 1)
        for name, url in lagging:
            client = w.client(name)
            assert content(client.get(url)) == truth(client, url), (name, url)


@pytest.mark.parametrize("cache_backend", ["file", pytest.param("redis", marks=pytest.mark.redis)],
                         indirect=True)  # fmt: skip
def test_an_install_lags_for_others_and_never_for_the_writer(
    cache_backend, settings, monkeypatch, django_capture_on_commit_callbacks
):
    settings.COUNTER_STALENESS = 30
    w = World()
    listing = "/api/v1/marketplace/agents/?ordering=-installs"
    for client in (w.anon, w.api, w.api):
        client.get(listing)
    with django_capture_on_commit_callbacks(execute=True):
        ok(w.api.post(f"/api/v1/agents/{w.agent.pk}/install/"))

    def installs(client):
        rows = client.get(listing).json()["results"]
        return {row["slug"]: row["install_count"] for row in rows}["alpha"]

    assert installs(w.anon) == 0  # everybody else: the copy from before, for now
    assert installs(w.api) == 1  # the writer: at once
    skip_ahead(monkeypatch, 31)
    assert installs(w.anon) == 1


def test_the_matrix_can_see_staleness(cache_backend, settings):
    """Control: the same kind of write without its invalidation leaves warm copies stale."""
    settings.COUNTER_STALENESS = 0
    w = World()
    warm(w)
    Agent.objects.filter(pk=w.agent.pk).update(install_count=5)  # no forget
    stale = [
        (name, url)
        for name, url in w.reads()
        if content(w.client(name).get(url)) != truth(w.client(name), url)
    ]
    assert ("anon", "/api/v1/marketplace/agents/") in stale
    assert ("web", f"/agents/{w.agent.slug}/") in stale
