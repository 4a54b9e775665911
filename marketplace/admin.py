"""Staff admin. Counters are read-only here: every write that moves one goes through services."""

from django.contrib import admin, messages
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from aios.admin import URL_FIELDS
from aios.pagination import EstimatedCountPaginator

from . import icons, services
from .models import Agent, Category, Installation, Publisher, Review

COUNTERS = ("rating_average", *services.COUNTER_FIELDS)


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "position")
    list_editable = ("position",)
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}


@admin.register(Publisher)
class PublisherAdmin(admin.ModelAdmin):
    formfield_overrides = URL_FIELDS
    list_display = ("name", "slug", "verified", "owner", "website")
    list_filter = ("verified",)
    search_fields = ("name", "slug")
    list_select_related = ("owner",)
    autocomplete_fields = ("owner",)
    prepopulated_fields = {"slug": ("name",)}
    show_full_result_count = False


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    formfield_overrides = URL_FIELDS
    list_display = (
        "name",
        "category",
        "publisher",
        "is_active",
        "is_featured",
        "rating_average",
        "rating_count",
        "install_count",
        "updated_at",
    )
    list_filter = ("is_active", "is_featured", "category", "publisher__verified")
    search_fields = ("name", "slug", "tagline")
    list_select_related = ("category", "publisher")
    autocomplete_fields = ("category", "publisher")
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = (*COUNTERS, "created_at", "updated_at")
    date_hierarchy = "created_at"
    ordering = ("-id",)
    show_full_result_count = False  # one COUNT per page, not two, on filtered lists
    actions = ("feature", "unfeature", "activate", "deactivate")
    fieldsets = (
        (None, {"fields": ("name", "slug", "tagline", "category", "publisher", "icon")}),
        ("Listing", {"fields": ("is_active", "is_featured", "published_at")}),
        (
            "Details",
            {"fields": ("description", "tags", "version", "homepage_url", "source_url")},
        ),
        ("Counters (kept by the services)", {"fields": (*COUNTERS, "created_at", "updated_at")}),
    )

    def save_model(self, request, obj, form, change):
        upload = form.cleaned_data.get("icon")
        if "icon" in form.changed_data and isinstance(upload, UploadedFile):
            # Stored as content-addressed WebP sizes (marketplace.icons), not as sent.
            upload.seek(0)
            obj.icon = icons.store_upload(upload)
        super().save_model(request, obj, form, change)

    def _flag(self, request, queryset, label, **flags):
        changed = services.set_agents_flag(agent_ids=queryset.values_list("pk", flat=True), **flags)
        self.message_user(request, f"{changed} agent(s) {label}.", messages.SUCCESS)

    @admin.action(description="Feature the selected agents")
    def feature(self, request, queryset):
        self._flag(request, queryset, "featured", is_featured=True)

    @admin.action(description="Stop featuring the selected agents")
    def unfeature(self, request, queryset):
        self._flag(request, queryset, "no longer featured", is_featured=False)

    @admin.action(description="Activate (list) the selected agents")
    def activate(self, request, queryset):
        self._flag(request, queryset, "activated", is_active=True)

    @admin.action(description="Deactivate (unlist) the selected agents")
    def deactivate(self, request, queryset):
        self._flag(request, queryset, "deactivated", is_active=False)


@admin.register(Installation)
class InstallationAdmin(admin.ModelAdmin):
    """View and remove only: an installation added or moved here would skip the counters."""

    list_display = ("agent", "user", "installed_at")
    search_fields = ("agent__name", "agent__slug", "user__username")
    list_select_related = ("agent", "user")
    autocomplete_fields = ("agent", "user")
    date_hierarchy = "installed_at"
    show_full_result_count = False
    paginator = EstimatedCountPaginator  # a million rows: no COUNT(*) per page view

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def delete_model(self, request, obj):
        services.uninstall_agent(user=obj.user, agent=obj.agent)

    @transaction.atomic
    def delete_queryset(self, request, queryset):
        for installation in queryset.select_related("user", "agent"):
            services.uninstall_agent(user=installation.user, agent=installation.agent)


@admin.register(Review)
class ReviewAdmin(admin.ModelAdmin):
    """Moderation: hide, unhide or delete reviews; the rating itself belongs to its author."""

    list_display = ("agent", "user", "rating", "title", "is_hidden", "created_at")
    list_filter = ("is_hidden", "rating")
    search_fields = ("title", "body", "agent__name", "user__username")
    list_select_related = ("agent", "user")
    autocomplete_fields = ("agent", "user")
    readonly_fields = ("agent", "user", "rating", "is_hidden", "created_at", "updated_at")
    fields = ("agent", "user", "rating", "title", "body", "is_hidden", "created_at", "updated_at")
    date_hierarchy = "created_at"
    show_full_result_count = False
    paginator = EstimatedCountPaginator  # a quarter of a million rows and growing
    actions = ("hide", "unhide")

    def has_add_permission(self, request):
        return False

    def save_model(self, request, obj, form, change):
        # Through the service, so the cached agent pages and the author's data are retired.
        services.update_review(review=obj, title=obj.title, body=obj.body)

    def delete_model(self, request, obj):
        services.delete_review(review=obj)

    @transaction.atomic
    def delete_queryset(self, request, queryset):
        for review in queryset:
            services.delete_review(review=review)

    def _set_hidden(self, request, queryset, hidden: bool):
        changed = sum(services.set_review_hidden(review=r, hidden=hidden) for r in queryset)
        label = "hidden" if hidden else "shown again"
        self.message_user(request, f"{changed} review(s) {label}.", messages.SUCCESS)

    @admin.action(description="Hide the selected reviews")
    def hide(self, request, queryset):
        self._set_hidden(request, queryset, True)

    @admin.action(description="Show the selected reviews again")
    def unhide(self, request, queryset):
        self._set_hidden(request, queryset, False)
