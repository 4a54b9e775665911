"""Bench-only settings: production settings plus the naive baseline and the floor.

Everything else is `aios.settings` as production runs it (DEBUG comes from the environment,
which the runner leaves off). Only what a single-machine load test needs differs, each
with its reason.
"""

import os

from aios.settings import *  # noqa: F403

ROOT_URLCONF = "bench.naive_urls"

# Every request comes from 127.0.0.1, so per-client throttles would answer 429 to the whole
# load test; the throttle classes still run (their cache round trips are part of the cost).
_rest = globals().get("REST_FRAMEWORK")
if isinstance(_rest, dict) and _rest.get("DEFAULT_THROTTLE_RATES"):
    REST_FRAMEWORK = {
        **_rest,
        "DEFAULT_THROTTLE_RATES": dict.fromkeys(_rest["DEFAULT_THROTTLE_RATES"], "1000000/second"),
    }

# The same for the hit path's per-client budget (RESPONSE_CACHE_HIT_RATE hits per second per
# address and process, then Django's throttles count the requests): one address here stands
# for a hundred clients. The hit path itself and COUNTER_STALENESS keep their defaults.
RESPONSE_CACHE_HIT_RATE = 1_000_000

# The load is plain HTTP on the loopback: a TLS redirect would measure redirects.
SECURE_SSL_REDIRECT = False

# Smoke runs measure nothing and must take seconds: no collectstatic (a minute of minifying
# and compressing), so templates link static files by their plain names.
if os.environ.get("BENCH_PLAIN_STATIC") == "1":
    STORAGES = {
        **STORAGES,  # noqa: F405
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
