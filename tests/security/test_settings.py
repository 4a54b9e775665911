"""Hardened settings: production refuses development settings, passes the deploy checks, and
every response carries the security headers; templates give the CSP nothing to forbid."""

import json
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

ROOT = Path(settings.BASE_DIR)
REAL_KEY = secrets.token_urlsafe(50)


def _run(args: list[str], env: dict, tmp_path) -> subprocess.CompletedProcess:
    """A fresh interpreter outside pytest (so TESTING is off), with only `env` set."""
    base = {"PATH": "/usr/bin:/bin", "AIOS_VAR_DIR": str(tmp_path), "LOG_FORMAT": "plain"}
    return subprocess.run(
        [sys.executable, *args],
        env={**base, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


PRODUCTION = {"DJANGO_ENV": "production", "DJANGO_SECRET_KEY": REAL_KEY}


def test_production_settings_pass_the_deploy_checks(tmp_path):
    result = _run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"], PRODUCTION, tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "env",
    [
        {"DJANGO_ENV": "production"},  # the development key
        {"DJANGO_ENV": "production", "DJANGO_SECRET_KEY": "django-insecure-" + "x" * 60},
        {"DJANGO_ENV": "production", "DJANGO_SECRET_KEY": "short"},
        {**PRODUCTION, "DJANGO_DEBUG": "1"},
    ],
    ids=["dev-key", "insecure-prefix", "short-key", "debug"],
)
def test_production_refuses_to_start_with_development_settings(env, tmp_path):
    result = _run(["manage.py", "check"], env, tmp_path)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert ("DJANGO_DEBUG" if "DJANGO_DEBUG" in env else "DJANGO_SECRET_KEY") in result.stderr


def test_development_default_starts_with_the_development_key(tmp_path):
    """`make run` on a fresh machine: no DJANGO_ENV, no key, plain HTTP."""
    result = _run(["manage.py", "check", "--fail-level", "WARNING"], {}, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


PROBE = """
import json, django
import aios.settings as m
# The manifest storage needs collectstatic; what is probed here is headers and cookies.
m.STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"
django.setup()
from django.conf import settings as s
from django.contrib.auth.hashers import get_hasher, make_password
from django.test import Client
response = Client().get("/accounts/login/", secure=True)
print(json.dumps({
    "status": response.status_code,
    "hsts": response.get("Strict-Transport-Security"),
    "session_secure": s.SESSION_COOKIE_SECURE,
    "csrf_secure": s.CSRF_COOKIE_SECURE,
    "csrf_cookie": response.cookies["csrftoken"].output(),
    "ssl_redirect": s.SECURE_SSL_REDIRECT,
    "hasher": get_hasher().algorithm,
    "plain_page": Client().get("/accounts/login/").status_code,
    "plain_probe": Client().get("/healthz").status_code,
    "hash": make_password("correct horse battery staple")[:9],
}))
"""


def _probe(env, tmp_path) -> dict:
    result = _run(["-c", PROBE], {"DJANGO_SETTINGS_MODULE": "aios.settings", **env}, tmp_path)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_sends_hsts_and_secure_httponly_cookies_and_hashes_with_argon2(tmp_path):
    knobs = _probe(PRODUCTION, tmp_path)
    assert knobs["status"] == 200
    assert "max-age=31536000" in knobs["hsts"]
    assert "includeSubDomains" in knobs["hsts"]
    assert knobs["session_secure"] and knobs["csrf_secure"] and knobs["ssl_redirect"]
    assert "Secure" in knobs["csrf_cookie"] and "HttpOnly" in knobs["csrf_cookie"]
    assert knobs["hasher"] == "argon2"
    assert knobs["hash"] == "argon2$ar"  # argon2-cffi is installed and really used
    assert knobs["plain_page"] == 301  # to HTTPS
    assert knobs["plain_probe"] == 200  # health probes stay on plain HTTP


def test_development_keeps_cookies_usable_over_plain_http(tmp_path):
    knobs = _probe({}, tmp_path)
    assert knobs["hsts"] is None
    assert not (knobs["session_secure"] or knobs["csrf_secure"] or knobs["ssl_redirect"])
    assert knobs["hasher"] == "argon2"


@pytest.mark.django_db
def test_every_page_response_carries_the_security_headers(client, user):
    client.force_login(user)
    response = client.get(reverse("home"))
    assert response.status_code == 200
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    policy = dict(
        part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";")
    )
    assert policy["default-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["object-src"] == "'none'"
    assert "unsafe-inline" not in policy.get("script-src", policy["default-src"])


@pytest.mark.django_db
def test_session_and_csrf_cookies_are_httponly(client, user):
    response = client.post(
        reverse("login"), {"username": user.username, "password": "correct horse battery staple"}
    )
    assert response.status_code == 302
    assert response.cookies["sessionid"]["httponly"]
    assert response.cookies["sessionid"]["samesite"] == "Lax"
    assert client.get(reverse("login")).cookies["csrftoken"]["httponly"]


# What a Content-Security-Policy without 'unsafe-inline' blocks: inline scripts, event
# handler attributes, style attributes and <style> blocks, javascript: URLs.
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/(?:ld\+)?json)[^>]*>", re.I)
HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.I)
STYLE = re.compile(r"<[^>]*\sstyle\s*=|<style\b", re.I)
JS_URL = re.compile(r"javascript:", re.I)


def _site_templates():
    return sorted((ROOT / "templates").rglob("*.html"))


def test_site_templates_need_no_inline_script_or_style():
    offenders = []
    for path in _site_templates():
        text = path.read_text()
        for name, pattern in (
            ("inline script", INLINE_SCRIPT),
            ("event handler", HANDLER),
            ("style", STYLE),
            ("javascript: URL", JS_URL),
        ):
            if pattern.search(text):
                offenders.append(f"{path.relative_to(ROOT)}: {name}")
    assert not offenders, offenders


def test_the_scan_catches_what_the_policy_blocks():
    assert INLINE_SCRIPT.search("<script>alert(1)</script>")
    assert not INLINE_SCRIPT.search('<script src="/static/js/site.js" defer></script>')
    assert not INLINE_SCRIPT.search('<script type="application/json" id="d">{}</script>')
    assert HANDLER.search('<img src=x onerror="alert(1)">')
    assert STYLE.search('<div style="width: 3%">')
    assert not STYLE.search('<link rel="stylesheet" href="/static/css/site.css">')


@pytest.mark.django_db
def test_only_the_api_docs_may_style_inline_and_nothing_may_script_inline(client):
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    policy = docs["Content-Security-Policy"]
    assert "style-src 'self' 'unsafe-inline'" in policy
    assert "script-src" not in policy and "default-src 'self'" in policy  # scripts: 'self'
    assert "unsafe-inline" not in client.get(reverse("home"))["Content-Security-Policy"]
