"""The signed-in user's knowledge entries. Anyone else's entry answers 404, never 403."""

from functools import cached_property

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.permissions import IsAuthenticated

from aios.api.errors import errors
from aios.api.fields import validated
from aios.renderers import lean_renderers
from aios.response_cache import CachedResponseMixin
from knowledge.models import KnowledgeEntry

from ..caching import own_entries
from .serializers import KnowledgeEntrySerializer, KnowledgeFilterParams, entry_rows

WRITE_ERRORS = errors(400, 401, 403, 404)


@extend_schema(tags=["knowledge"])
@extend_schema_view(
    list=extend_schema(
        operation_id="knowledge_entries_list",
        summary="Your knowledge entries, most recently edited first",
        parameters=[KnowledgeFilterParams],
        responses={200: KnowledgeEntrySerializer(many=True), **errors(400, 401)},
    ),
    create=extend_schema(
        operation_id="knowledge_entry_create",
        summary="Add a knowledge entry",
        responses={201: KnowledgeEntrySerializer, **errors(400, 401, 403)},
    ),
    retrieve=extend_schema(
        operation_id="knowledge_entry_get",
        summary="One of your entries",
        responses={200: KnowledgeEntrySerializer, **errors(401, 404)},
    ),
    update=extend_schema(
        operation_id="knowledge_entry_replace",
        summary="Replace one of your entries",
        responses={200: KnowledgeEntrySerializer, **WRITE_ERRORS},
    ),
    partial_update=extend_schema(
        operation_id="knowledge_entry_update",
        summary="Change some fields of one of your entries",
        responses={200: KnowledgeEntrySerializer, **WRITE_ERRORS},
    ),
    destroy=extend_schema(
        operation_id="knowledge_entry_delete",
        summary="Delete one of your entries",
        responses={204: None, **errors(401, 403, 404)},
    ),
)
class KnowledgeEntryViewSet(CachedResponseMixin, viewsets.ModelViewSet):
    serializer_class = KnowledgeEntrySerializer
    permission_classes = [IsAuthenticated]
    renderer_classes = lean_renderers()
    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]
    cache_policies = dict.fromkeys(["list", "retrieve"], own_entries)

    @cached_property
    def params(self) -> dict:
        return validated(KnowledgeFilterParams, self.request.query_params)

    def get_keyset_ordering(self):
        return ("updated_at", "desc")

    def get_queryset(self):
        entries = KnowledgeEntry.objects.owned_by(self.request.user).for_api()
        if self.action != "list":
            return entries
        p = self.params
        return entries.filtered(
            content_type=p.get("content_type"), agent=p.get("agent"), q=p.get("q", "").strip()
        )

    def list(self, request, *args, **kwargs):
        p = self.params
        if p.get("q", "").strip():  # a text search: its LIKE pattern is escaped per value
            entries = self.get_queryset().rows()
        else:
            entries = KnowledgeEntry.objects.rows_shape(
                request.user, content_type=p.get("content_type") or None, agent=p.get("agent")
            )
        page = self.paginate_queryset(entries)
        return self.get_paginated_response(entry_rows(page))

    def perform_create(self, serializer):
        serializer.save(user=self.request.user)
