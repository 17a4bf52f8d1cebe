from django.urls import path

from .views import DecisionExportView, ReleaseGateView

urlpatterns = [
    path("decisions/", DecisionExportView.as_view(), name="decisions-export"),
    path("release-gate/", ReleaseGateView.as_view(), name="release-gate"),
]
