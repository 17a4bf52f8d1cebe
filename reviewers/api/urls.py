from django.urls import path

from .views import AfterwardsView, BatchView, ClaimView, DecideView, HistoryView, LabelView, QueueView, RequestView

urlpatterns = [
    path("queue", QueueView.as_view(), name="review-queue"),
    path("requests/<str:request_id>", RequestView.as_view(), name="review-request"),
    path("requests/<str:request_id>/decide", DecideView.as_view(), name="review-decide"),
    path("requests/<str:request_id>/claim", ClaimView.as_view(), name="review-claim"),
    path("batch", BatchView.as_view(), name="review-batch"),
    path("history", HistoryView.as_view(), name="review-history"),
    path("afterwards", AfterwardsView.as_view(), name="review-afterwards"),
    path("afterwards/<str:request_id>/label", LabelView.as_view(), name="review-label"),
]
