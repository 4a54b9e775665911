import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aios.settings")
os.environ.setdefault("AIOS_SERVING", "1")  # request-time limits such as statement_timeout

django_application = get_wsgi_application()

from aios.response_cache import HitPath  # noqa: E402 - needs the settings loaded above

# Fresh cached copies are answered here, before Django's middleware and URL resolver.
application = HitPath(django_application)
