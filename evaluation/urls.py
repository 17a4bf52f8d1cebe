from django.urls import path

from . import views
from .prometheus import metrics_view

app_name = "evaluation"

urlpatterns = [
    path("metrics", metrics_view, name="metrics"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("dashboard/decisions/", views.decisions_page, name="decisions"),
    path("dashboard/release-gate/", views.release_gate_page, name="release-gate-page"),
    path("dashboard/alerts/<int:alert_id>/acknowledge", views.alert_acknowledge, name="alert-acknowledge"),
]
