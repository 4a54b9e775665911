from django.urls import path

from . import views

urlpatterns = [
    path("metrics", views.metrics, name="metrics"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("api/v1/monitoring/", views.monitoring_api, name="monitoring-api"),
    path("staff/monitoring/", views.staff_page, name="monitoring-staff"),
]
