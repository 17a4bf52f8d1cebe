from django.urls import path

from .views import DecisionExportView

urlpatterns = [
    path("decisions/", DecisionExportView.as_view(), name="decisions-export"),
]
