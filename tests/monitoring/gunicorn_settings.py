"""Settings for the gunicorn started by test_gunicorn.py: the app plus the test views."""

from aios.settings import *  # noqa: F403

ROOT_URLCONF = "tests.monitoring.urls"
