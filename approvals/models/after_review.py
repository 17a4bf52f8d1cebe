"""Review afterwards: the label a reviewer gives a request that ran unattended."""

from django.conf import settings
from django.db import models

from .requests import ActionRequest, AfterReviewLabelKind, Surface


class AfterReviewLabel(models.Model):
    """A reviewer's judgement of a request that ran without one: was letting it through right?

    Evaluation data, like a decision: ``fine``, or flagged (``should_have_asked``,
    ``should_have_blocked``) with a reason category. One per request (the first reviewer wins).
    """

    request = models.OneToOneField(ActionRequest, on_delete=models.CASCADE, related_name="after_review_label")
    label = models.CharField(max_length=20, choices=AfterReviewLabelKind.choices)
    reason_category = models.CharField(max_length=50, blank=True)
    note = models.TextField(blank=True)
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    reviewer_username = models.CharField(max_length=150)
    surface = models.CharField(max_length=10, choices=Surface.choices, default=Surface.WEB)
    labelled_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=("-labelled_at",), name="after_review_labels_by_time")]

    def __str__(self) -> str:
        return f"{self.label} by {self.reviewer_username}"

    @property
    def flagged(self) -> bool:
        return self.label != AfterReviewLabelKind.FINE
