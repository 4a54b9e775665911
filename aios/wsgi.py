import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aios.settings")
os.environ.setdefault("AIOS_SERVING", "1")  # request-time limits such as statement_timeout

application = get_wsgi_application()
