from django.urls import path

from . import views

app_name = "integrations"

urlpatterns = [
    path("slack/interactions", views.slack_interactions, name="slack-interactions"),
    path("slack/link", views.slack_link, name="slack-link"),
    path("slack/", views.slack_settings, name="slack-settings"),
    path("slack/<int:identity_id>/unlink", views.slack_unlink, name="slack-unlink"),
]
