from __future__ import annotations

from rest_framework import serializers

from core.serializers import JSONObjectField, StrictSerializer
from policies.models import Mode, OnExpiry


class PolicyFieldsSerializer(StrictSerializer):
    """Types only; the rules (patterns, CEL, clocks) are the model's, applied by the service."""

    action_pattern = serializers.CharField(max_length=200)
    mode = serializers.ChoiceField(choices=list(Mode.values))
    condition = serializers.CharField(required=False, allow_blank=True, default="")
    priority = serializers.IntegerField(required=False, default=0)
    enabled = serializers.BooleanField(required=False, default=True)
    required_approvals = serializers.IntegerField(required=False, default=1, min_value=1)
    reviewer_group = serializers.CharField(required=False, allow_null=True, default=None, help_text="Group name.")
    pending_ttl_seconds = serializers.IntegerField(required=False, min_value=1, default=4 * 3600)
    approval_ttl_seconds = serializers.IntegerField(required=False, min_value=1, default=15 * 60)
    on_expiry = serializers.ChoiceField(choices=list(OnExpiry.values), required=False, default=OnExpiry.REJECT)
    escalation_group = serializers.CharField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Group name; required when on_expiry is escalate. The group must hold the review permission.",
    )
    description = serializers.CharField(required=False, allow_blank=True, default="")
    collapse_duplicates = serializers.BooleanField(
        required=False,
        allow_null=True,
        default=None,
        help_text="An identical retry of a pending request returns that request. Null: the default (on).",
    )
    sample_rate = serializers.FloatField(
        required=False,
        default=0.0,
        min_value=0.0,
        max_value=1.0,
        help_text="Share of auto-mode requests a reviewer labels afterwards (0 to 1); log mode: every one.",
    )


class PolicyWriteSerializer(PolicyFieldsSerializer):
    change_note = serializers.CharField(help_text="Why: kept in the policy history with your name and the diff.")


class PolicyOutputSerializer(PolicyFieldsSerializer):
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class ChangeNoteSerializer(StrictSerializer):
    change_note = serializers.CharField()


class PolicyVersionOutputSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    created_by = serializers.CharField(allow_null=True)
    note = serializers.CharField()
    diff = serializers.JSONField()
    snapshot = serializers.JSONField(required=False)


class RollbackInputSerializer(StrictSerializer):
    change_note = serializers.CharField(required=False, allow_blank=True, default="")


class SimulateInputSerializer(StrictSerializer):
    rows = serializers.ListField(
        child=JSONObjectField(), required=False, help_text="The whole draft table, as policy rows (objects)."
    )
    draft_id = serializers.IntegerField(required=False)
    days = serializers.IntegerField(required=False, min_value=1, max_value=365)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=10_000)

    def validate(self, attrs):
        if ("rows" in attrs) == ("draft_id" in attrs):
            raise serializers.ValidationError("Send either rows (a draft table) or draft_id.")
        if "days" not in attrs and "limit" not in attrs:
            attrs["days"] = 7
        return attrs


class TransitionCountsSerializer(serializers.DictField):
    child = serializers.IntegerField()


class ActionTypeChangeSerializer(serializers.Serializer):
    action_type = serializers.CharField()
    requests = serializers.IntegerField()
    changed = serializers.IntegerField()
    transitions = TransitionCountsSerializer(help_text='e.g. {"approve->auto": 34}')
    previously_rejected_now_unattended = serializers.IntegerField()
    previously_approved_now_blocked = serializers.IntegerField()


class SimulationOutputSerializer(serializers.Serializer):
    replayed = serializers.IntegerField()
    since = serializers.CharField(allow_null=True)
    changed = serializers.IntegerField()
    previously_rejected_now_unattended = serializers.IntegerField()
    by_action_type = ActionTypeChangeSerializer(many=True)
    summary = serializers.ListField(child=serializers.CharField())


class DraftInputSerializer(StrictSerializer):
    name = serializers.CharField(max_length=120)
    rows = serializers.ListField(
        child=JSONObjectField(), help_text="The whole proposed table, as policy rows (objects)."
    )
    note = serializers.CharField(required=False, allow_blank=True, default="")


class DraftOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    rows = serializers.JSONField()
    note = serializers.CharField()
    based_on_version = serializers.IntegerField()
    published_version = serializers.IntegerField(allow_null=True)
