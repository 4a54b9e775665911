import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aios.settings")
os.environ.setdefault("AIOS_SERVING", "1")  # request-time limits such as statement_timeout

django_application = get_wsgi_application()

from aios.proxies import ClientAddress  # noqa: E402 - needs the settings loaded above
from aios.response_cache import HitPath  # noqa: E402

# Fresh cached copies are answered here, before Django's middleware and URL resolver; behind
# TRUSTED_PROXIES, REMOTE_ADDR is the client's address before either sees it.
application = ClientAddress(HitPath(django_application))
