from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("agents/", views.agent_list, name="agent-list"),
    path("agents/<slug:slug>/", views.agent_detail, name="agent-detail"),
]
