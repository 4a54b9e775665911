from django.urls import path

from . import views

urlpatterns = [
    path("", views.entry_list, name="knowledge-list"),
    path("new/", views.entry_create, name="knowledge-create"),
    path("<int:pk>/", views.entry_detail, name="knowledge-detail"),
    path("<int:pk>/edit/", views.entry_update, name="knowledge-update"),
    path("<int:pk>/delete/", views.entry_delete, name="knowledge-delete"),
]
