from django.conf import settings
from django.db import models


class SlackIdentity(models.Model):
    """A Slack user that a reviewer linked to their account: their Slack clicks decide as them.

    Made once, by the reviewer opening (signed in) the link Slack showed only to that Slack user.
    """

    team_id = models.CharField(max_length=40, help_text="The Slack workspace (T…).")
    slack_user_id = models.CharField(max_length=40, help_text="The Slack user (U…).")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="slack_identities")
    linked_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "Slack identities"
        constraints = [models.UniqueConstraint(fields=("team_id", "slack_user_id"), name="one_account_per_slack_user")]

    def __str__(self) -> str:
        return f"{self.team_id}/{self.slack_user_id} → {self.user}"
