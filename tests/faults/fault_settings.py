"""The app's settings plus a test-only URL that holds a database connection busy.

Gunicorn runs the real app with these (DJANGO_SETTINGS_MODULE) in tests/faults only.
"""

from aios.settings import *  # noqa: F403

ROOT_URLCONF = "tests.faults.fault_urls"
# No collectstatic in tests: pages link plain static names.
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
