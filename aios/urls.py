from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from aios.throttling import ThrottledPasswordResetView

# The public API (issue 3): reverse("api:agent-list"), reverse("api:knowledge-entry-detail").
API_V1 = [
    path("", include("marketplace.api.urls")),
    path("knowledge/", include("knowledge.api.urls")),
]
# JSON errors under /api/, Django's HTML pages elsewhere (aios/api/errors.py).
handler400 = "aios.api.errors.bad_request"
handler404 = "aios.api.errors.not_found"
handler500 = "aios.api.errors.server_error"

urlpatterns = [
    # /metrics, /healthz, /readyz, api/v1/monitoring/ (before any other api/v1/ include).
    path("", include("aios.monitoring.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include((API_V1, "api"))),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("knowledge/", include("knowledge.urls")),
    # Password reset (Django's views): the same answer whether or not an account has the address,
    # and no more than a few mails per address and asker (aios.throttling).
    path("accounts/password/reset/", ThrottledPasswordResetView.as_view(), name="password_reset"),
    path(
        "accounts/password/reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "accounts/password/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "accounts/password/reset/complete/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("", include("marketplace.urls")),
]

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)

if "debug_toolbar" in settings.INSTALLED_APPS:  # DJANGO_DEBUG=1 outside tests only
    from debug_toolbar.toolbar import debug_toolbar_urls

    urlpatterns += debug_toolbar_urls()
