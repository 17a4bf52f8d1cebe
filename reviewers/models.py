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


class PersonalAccessToken(models.Model):
    """A reviewer's token for the reviewer API (``Authorization: Bearer cs_pat_…``).

    Shown once when created; only its SHA-256 is stored (as agents' API keys, which it can
    never be mistaken for: see ``approvals.models.REVIEWER_TOKEN_PREFIX``). It always expires,
    and it acts as its user: group visibility, separation of duties and quorum apply as on
    the queue page, because every decision goes through the same service.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_tokens")
    name = models.CharField(max_length=100, help_text="What the reviewer uses it for (a script, a phone app).")
    prefix = models.CharField(max_length=16, help_text="The first characters of the token, to recognise it.")
    token_hash = models.CharField(max_length=64, unique=True)
    read_only = models.BooleanField(default=False, help_text="Reads only: every write is refused (token_read_only).")
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"


class CardOpening(models.Model):
    """When a reviewer first opened a pending request's card (their first claim on it).

    Kept after the claim is released or the request decided: reviewer quality measures the
    time from opening to decision (an approval seconds after opening was hardly read).
    """

    # Indexed by its unique constraint, whose first column it is.
    request = models.ForeignKey("approvals.ActionRequest", on_delete=models.CASCADE, related_name="+", db_index=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    opened_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["request", "user"], name="one_opening_per_reviewer")]

    def __str__(self) -> str:
        return f"{self.request_id} opened by {self.user_id}"


class SecondOpinion(models.Model):
    """A second reviewer's blind call on an already-decided request: what they would have decided.

    Shown without the first decision; compared with it for reviewer agreement (Cohen's kappa).
    It decides nothing: the request's outcome stays the first reviewer's.
    """

    # Indexed by its unique constraint, whose first column it is.
    request = models.ForeignKey("approvals.ActionRequest", on_delete=models.CASCADE, related_name="+", db_index=False)
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    approve = models.BooleanField()
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["request", "reviewer"], name="one_second_opinion_per_reviewer")]

    def __str__(self) -> str:
        return f"{self.request_id}: {'approve' if self.approve else 'reject'} by {self.reviewer_id}"


class SsoIdentity(models.Model):
    """The OpenID Connect provider's stable id (``sub``) of the person an account belongs to.

    Recorded at the account's first single sign-on (found by its verified email, or created);
    from then on the account is found by ``sub`` alone, so a changed email keeps its account and
    someone else given that email at the provider cannot sign into it (reviewers/sso.py).
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sso_identity")
    subject = models.CharField(max_length=255, unique=True)
    linked_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.subject} -> {self.user_id}"
