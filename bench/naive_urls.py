"""Bench-only URLconf: the app's own routes, plus the naive baseline and the floor."""

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from aios.urls import urlpatterns as app_urlpatterns

from . import naive

router = SimpleRouter()
router.register("agents", naive.AgentViewSet, basename="naive-agent")
router.register("me/installations", naive.MyInstallationViewSet, basename="naive-installation")
router.register("knowledge/entries", naive.KnowledgeEntryViewSet, basename="naive-knowledge")

urlpatterns = [
    path("floor/", naive.floor, name="bench-floor"),
    path("naive/stats/", naive.StatsView.as_view(), name="naive-stats"),
    path("naive/", include(router.urls)),
    *app_urlpatterns,
]
