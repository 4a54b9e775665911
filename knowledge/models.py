from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import slug_re
from django.db import models
from django.urls import reverse

from .managers import KnowledgeEntryQuerySet

MAX_TAGS = 20
MAX_TAG_LENGTH = 50


def clean_tags(tags: list[str]) -> list[str]:
    """`tags` without repeats, if they are at most MAX_TAGS slugs (letters, digits, - and _) of
    up to MAX_TAG_LENGTH characters; else a ValidationError. The page form and the API both
    ask this, so a tag saved from one always reads back through the other."""
    tags = list(dict.fromkeys(tags))
    if len(tags) > MAX_TAGS:
        raise ValidationError(f"At most {MAX_TAGS} tags.", code="max_length")
    for tag in tags:
        if len(tag) > MAX_TAG_LENGTH:
            raise ValidationError(
                f"Each tag is at most {MAX_TAG_LENGTH} characters.", code="max_length"
            )
        if not slug_re.match(tag):
            raise ValidationError(
                f"“{tag}” is not a tag: use letters, digits, - and _ only.", code="invalid"
            )
    return tags


class KnowledgeEntry(models.Model):
    class ContentType(models.TextChoices):
        NOTE = "note", "Note"
        DOCUMENT = "document", "Document"
        LINK = "link", "Link"
        SNIPPET = "snippet", "Snippet"
        FAQ = "faq", "FAQ"

    # Led by idx_knowledge_user_type: no single-column index of its own.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="knowledge_entries",
        db_index=False,
    )
    content_type = models.CharField(
        max_length=16, choices=ContentType.choices, default=ContentType.NOTE
    )
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True, max_length=100_000)
    source_url = models.URLField(blank=True, max_length=500)
    agent = models.ForeignKey(
        "marketplace.Agent",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="knowledge_entries",
        db_index=False,  # knowledge_agent_idx below
        help_text="The agent this entry is meant for, if any.",
    )
    tags = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = KnowledgeEntryQuerySet.as_manager()

    class Meta:
        db_table = "knowledge_entries"
        ordering = ["-updated_at", "-id"]
        verbose_name_plural = "knowledge entries"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(content_type__in=["note", "document", "link", "snippet", "faq"]),
                name="knowledge_content_type_valid",
            ),
        ]
        indexes = [
            # The report's index: a user's entries of one content type.
            models.Index(fields=["user", "content_type"], name="idx_knowledge_user_type"),
            # A user's knowledge base, most recently edited first, key-set on (updated_at, id).
            models.Index(fields=["user", "-updated_at", "-id"], name="knowledge_user_recent_idx"),
            # Entries about an agent; SET NULL when the agent is deleted.
            models.Index(fields=["agent"], name="knowledge_agent_idx"),
        ]

    def __str__(self):
        return self.title

    def get_absolute_url(self):
        return reverse("knowledge-detail", kwargs={"pk": self.pk})
