from django.urls import path

from . import views

app_name = "reviewers"

urlpatterns = [
    path("", views.queue_page, name="queue"),
    path("cards.json", views.queue_cards_json, name="cards"),
    path("requests/<str:request_id>/decide", views.decide, name="decide"),
    path("history/", views.history, name="history"),
    path("requests/<uuid:request_id>/", views.request_page, name="request"),
    path("email/", views.email_decision, name="email-decision"),
    path("push/", views.push_page, name="push"),
    path("push/subscriptions", views.push_subscribe, name="push-subscribe"),
    path("push/subscriptions/remove", views.push_unsubscribe, name="push-unsubscribe"),
    path("push/decide", views.push_decide, name="push-decide"),
    path("batch-decide", views.batch_decide, name="batch-decide"),
    path("settings/tokens/", views.tokens_page, name="tokens"),
    path("settings/tokens/<int:token_id>/revoke", views.token_revoke, name="token-revoke"),
    path("second-opinion/", views.second_opinion_page, name="second-opinion"),
    path("afterwards/", views.afterwards_page, name="afterwards"),
    path("quality/", views.quality_page, name="quality"),
]
