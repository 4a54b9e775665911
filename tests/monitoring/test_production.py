"""Production settings as a real process sees them (a subprocess: settings load once)."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys
import django
django.setup()
from django.conf import settings
from django.test import Client
public = Client(REMOTE_ADDR="203.0.113.9")
local = Client()
print(json.dumps({
    "public_metrics": public.get("/metrics", secure=True).status_code,
    "public_metrics_http": public.get("/metrics").status_code,
    "local_metrics": local.get("/metrics").status_code,
    "public_monitoring": public.get("/api/v1/monitoring/", secure=True).status_code,
    "toolbar_loaded": "debug_toolbar" in sys.modules,
}))
"""


def _probe(**env):
    environment = {k: v for k, v in os.environ.items() if k not in {"DJANGO_DEBUG", "AIOS_TESTING"}}
    environment.update(env, DJANGO_SETTINGS_MODULE="aios.settings")
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_keeps_metrics_and_the_snapshot_from_the_public():
    seen = _probe(DJANGO_ENV="production", DJANGO_SECRET_KEY="p" * 64, ALLOWED_HOSTS="testserver")
    assert seen["public_metrics"] == 403
    assert seen["public_metrics_http"] == 403  # not redirected to HTTPS, still refused
    assert seen["local_metrics"] == 200  # a scraper on the host
    assert seen["public_monitoring"] == 401
    assert seen["toolbar_loaded"] is False


def test_debug_toolbar_loads_only_in_development_debug():
    assert _probe(DJANGO_DEBUG="1")["toolbar_loaded"] is True
    assert _probe()["toolbar_loaded"] is False
