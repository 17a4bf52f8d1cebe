from django.urls import path

from .views import AfterReviewExportView, DecisionExportView, ReleaseGateView

urlpatterns = [
    path("decisions/", DecisionExportView.as_view(), name="decisions-export"),
    path("release-gate/", ReleaseGateView.as_view(), name="release-gate"),
    path("after-reviews/", AfterReviewExportView.as_view(), name="after-reviews-export"),
]
