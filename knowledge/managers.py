from django.db import models


class KnowledgeEntryQuerySet(models.QuerySet):
    def owned_by(self, user):
        """Entries of `user`; anyone else's entries do not exist as far as callers can tell."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(user=user)

    def with_agent(self):
        return self.select_related("agent").order_by("-updated_at", "-id")
