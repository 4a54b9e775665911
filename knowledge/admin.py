from django.contrib import admin

from aios.admin import URL_FIELDS
from aios.pagination import EstimatedCountPaginator

from .models import KnowledgeEntry


@admin.register(KnowledgeEntry)
class KnowledgeEntryAdmin(admin.ModelAdmin):
    formfield_overrides = URL_FIELDS
    list_display = ("title", "user", "content_type", "agent", "updated_at")
    list_filter = ("content_type",)
    search_fields = ("title", "user__username", "source_url")
    list_select_related = ("user", "agent")
    autocomplete_fields = ("user", "agent")
    readonly_fields = ("created_at", "updated_at")
    date_hierarchy = "updated_at"
    show_full_result_count = False
    paginator = EstimatedCountPaginator  # half a million rows: no COUNT(*) per page view
