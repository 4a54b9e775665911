from django.apps import AppConfig
from django.conf import settings
from django.db.models.signals import post_delete, pre_delete


class MarketplaceConfig(AppConfig):
    name = "marketplace"

    def ready(self):
        from . import caching, services

        caching.connect_receivers()
        pre_delete.connect(
            services.note_agents_of_deleted_user,
            sender=settings.AUTH_USER_MODEL,
            dispatch_uid="mkt-user-delete-note",
        )
        post_delete.connect(
            services.recount_agents_of_deleted_user,
            sender=settings.AUTH_USER_MODEL,
            dispatch_uid="mkt-user-delete-recount",
        )
