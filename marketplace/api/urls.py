from django.urls import path

from . import views

urlpatterns = [
    path("marketplace/agents/", views.AgentListView.as_view(), name="agent-list"),
    path(
        "marketplace/agents/featured/",
        views.FeaturedAgentListView.as_view(),
        name="agent-featured",
    ),
    path("marketplace/categories/", views.CategoryListView.as_view(), name="category-list"),
    path("marketplace/stats/", views.StatsView.as_view(), name="stats"),
    path("agents/search/", views.AgentSearchView.as_view(), name="agent-search"),
    path("agents/<int:pk>/", views.AgentDetailView.as_view(), name="agent-detail"),
    path("agents/<int:pk>/install/", views.InstallView.as_view(), name="agent-install"),
    path("agents/<int:pk>/reviews/", views.AgentReviewListView.as_view(), name="agent-reviews"),
    path("agents/<int:pk>/reviews/mine/", views.MyReviewView.as_view(), name="my-review"),
    path("me/installations/", views.MyInstallationListView.as_view(), name="my-installations"),
    path("auth/token/", views.TokenView.as_view(), name="auth-token"),
]
