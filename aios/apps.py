from django.apps import AppConfig


class AiosConfig(AppConfig):
    """The project package as an app: what the response cache listens to."""

    name = "aios"
    verbose_name = "AIOS"

    def ready(self):
        from . import response_cache

        response_cache.connect_credential_receivers()
