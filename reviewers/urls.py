from django.urls import path

from . import views

app_name = "reviewers"

urlpatterns = [
    path("", views.queue_page, name="queue"),
    path("cards.json", views.queue_cards_json, name="cards"),
    path("requests/<str:request_id>/decide", views.decide, name="decide"),
]
