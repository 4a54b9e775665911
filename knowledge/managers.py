from django.db import models

from aios.statements import Shape, Slot


class KnowledgeEntryQuerySet(models.QuerySet):
    def owned_by(self, user):
        """Entries of `user`; anyone else's entries do not exist as far as callers can tell."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(user=user)

    def of_type(self, content_type: str):
        return self.filter(content_type=content_type)

    def matching(self, text: str):
        """Entries whose title or body contains `text` (case-insensitive)."""
        return self.filter(models.Q(title__icontains=text) | models.Q(body__icontains=text))

    def filtered(self, *, content_type=None, agent=None, q=None):
        """Narrowed to a content type, an agent's id and/or entries containing `q`, each when
        given (None or "": not given). The API and the pages use it."""
        entries = self
        if content_type:
            entries = entries.of_type(content_type)
        if agent is not None:
            entries = entries.filter(agent_id=agent)
        if q:
            entries = entries.matching(q)
        return entries

    def with_agent(self):
        return self.select_related("agent").order_by("-updated_at", "-id")

    def for_api(self):
        """Entries with the id, slug and name of their agent (one join), no other agent column."""
        return self.select_related("agent").only(
            "id",
            "user_id",
            "content_type",
            "title",
            "body",
            "source_url",
            "tags",
            "created_at",
            "updated_at",
            "agent__id",
            "agent__slug",
            "agent__name",
        )

    def rows(self):
        """for_api() as values() rows (the agent's slug and name under `agent__`, null
        without an agent), in one query: the lean list."""
        return self.values(
            "id",
            "content_type",
            "title",
            "body",
            "source_url",
            "agent_id",
            "agent__slug",
            "agent__name",
            "tags",
            "created_at",
            "updated_at",
        )

    def rows_shape(self, user, *, content_type=None, agent=None) -> Shape:
        """owned_by(user).for_api().filtered(...).rows() for a content type and/or an agent,
        as one statement per combination."""
        given = {
            name: value
            for name, value in (("content_type", content_type), ("agent", agent))
            if value is not None
        }
        entries, pk_field = type(self), self.model._meta.get_field("agent").target_field

        def build():
            slots = {name: Slot(name) for name in given}
            if "agent" in slots:
                slots["agent"] = Slot("agent", pk_field)
            return entries(self.model).filter(user=Slot("user")).for_api().filtered(**slots).rows()

        return Shape(("knowledge-rows", *sorted(given)), build, self.model, user=user.pk, **given)
