from django.contrib.auth import views as auth_views
from django.urls import include, path

from aios.throttling import ThrottledLoginView

from . import views

# One agent's pages, under agents/<slug>/.
agent_pages = [
    path("", views.agent_detail, name="agent-detail"),
    path("reviews/", views.agent_reviews, name="agent-reviews"),
    path("install/", views.agent_install, name="agent-install"),
    path("uninstall/", views.agent_uninstall, name="agent-uninstall"),
    path("review/", views.review_create, name="review-create"),
    path("review/edit/", views.review_update, name="review-update"),
    path("review/delete/", views.review_delete, name="review-delete"),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("agents/", views.agent_list, name="agent-list"),
    path("agents/<slug:slug>/", include(agent_pages)),
    path("search/", views.search, name="search"),
    path("stats/", views.stats, name="stats"),
    path("me/agents/", views.my_agents, name="my-agents"),
    path("accounts/signup/", views.signup, name="signup"),
    # Log in / out and password change; password reset lives in aios/urls.py.
    # Brute force: per-account and per-address failure limits (aios.throttling).
    path("accounts/login/", ThrottledLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "accounts/password/",
        auth_views.PasswordChangeView.as_view(extra_context={"nav": "account"}),
        name="password_change",
    ),
    path(
        "accounts/password/done/",
        auth_views.PasswordChangeDoneView.as_view(extra_context={"nav": "account"}),
        name="password_change_done",
    ),
    path("media/icons/<path:name>", views.icon_file, name="icon-file"),
]
