from __future__ import annotations

from django.conf import settings
from django.db import models


class Claim(models.Model):
    """Who has a pending request open right now ("being reviewed by X"), so others can pick another.

    Advisory only: a claim never stops anyone else deciding. It lapses at ``expires_at``
    unless the open page renews it, so a closed laptop does not hold a card forever.
    """

    request = models.OneToOneField(
        "approvals.ActionRequest", on_delete=models.CASCADE, primary_key=True, related_name="claim"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    claimed_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.request_id} claimed by {self.user_id}"
