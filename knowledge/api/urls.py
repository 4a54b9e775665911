from rest_framework.routers import SimpleRouter

from .views import KnowledgeEntryViewSet

router = SimpleRouter()
router.register("entries", KnowledgeEntryViewSet, basename="knowledge-entry")

urlpatterns = router.urls
