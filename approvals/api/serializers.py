from __future__ import annotations

import re
from typing import Any

from django.core.validators import RegexValidator
from rest_framework import serializers

from approvals.models import ACTION_TYPE_REGEX
from core.errors import InvalidInput
from core.netguard import validate_outbound_url
from core.serializers import JSONObjectField, StrictCharField, StrictFloatField, StrictSerializer


class EvidenceSerializer(StrictSerializer):
    title = StrictCharField(max_length=300)
    url = StrictCharField(max_length=2000, required=False, allow_blank=True, default="")
    excerpt = StrictCharField(max_length=5000, required=False, allow_blank=True, default="")


class ActionSubmitInputSerializer(StrictSerializer):
    action_type = StrictCharField(
        max_length=200,
        validators=[
            RegexValidator(
                ACTION_TYPE_REGEX,
                message="Use lower-case letters, digits and _ . : - (e.g. send_external_email).",
                code="invalid_action_type",
            )
        ],
    )
    params = JSONObjectField()
    evidence = EvidenceSerializer(many=True, required=False, default=list, max_length=50)
    summary = StrictCharField(max_length=500)
    confidence = StrictFloatField(min_value=0.0, max_value=1.0, required=False, allow_null=True, default=None)
    context = JSONObjectField(required=False, default=dict)
    callback_url = StrictCharField(max_length=2000, required=False, allow_blank=True, default="")

    def validate_callback_url(self, value: str) -> str:
        if not value:
            return value
        try:
            return validate_outbound_url(value)
        except InvalidInput as exc:
            raise serializers.ValidationError(exc.message, code=exc.code) from None


_ACTION_TYPE = re.compile(ACTION_TYPE_REGEX)
# What a CharField refuses or changes (serializers.CharField: trimmed, no NUL, no lone surrogate).
_NOT_PLAIN = re.compile(r"\A\s|\s\Z|[\x00\ud800-\udfff]")
# The limits are the serializers' own, read from their fields: written once.
_SUBMISSION = ActionSubmitInputSerializer._declared_fields
_EVIDENCE = EvidenceSerializer._declared_fields
_SUBMISSION_FIELDS = frozenset(_SUBMISSION)
_EVIDENCE_FIELDS = frozenset(_EVIDENCE)


def _plain_text(value: Any, max_length: int, *, blank: bool = False) -> bool:
    return (
        isinstance(value, str)
        and len(value) <= max_length
        and (blank or value != "")
        and (value == "" or not _NOT_PLAIN.search(value))
    )


def _submission_plain(data: Any) -> dict[str, Any] | None:
    """``ActionSubmitInputSerializer``'s validated data, for a body it would take exactly as sent; else None.

    Every submission is validated, and the serializer costs more than the rest of the request's own
    Python (bench/README.md). This accepts only what it would accept unchanged (strings already
    trimmed, no callback URL to check against the network guard) and returns what it would
    return; anything else, valid or not, is left to it, with its error messages.
    """
    if not isinstance(data, dict) or not _SUBMISSION_FIELDS.issuperset(data):
        return None
    action_type, params, summary = data.get("action_type"), data.get("params"), data.get("summary")
    evidence, confidence = data.get("evidence", []), data.get("confidence")
    context, callback_url = data.get("context", {}), data.get("callback_url", "")
    if not (
        _plain_text(action_type, _SUBMISSION["action_type"].max_length)
        and _ACTION_TYPE.search(action_type)
        and isinstance(params, dict)
        and _plain_text(summary, _SUBMISSION["summary"].max_length)
        and isinstance(context, dict)
        and callback_url == ""
        and (
            confidence is None
            or (
                type(confidence) in (int, float)
                and _SUBMISSION["confidence"].min_value <= confidence <= _SUBMISSION["confidence"].max_value
            )
        )
        and isinstance(evidence, list)
        and len(evidence) <= _SUBMISSION["evidence"].max_length
    ):
        return None
    items = []
    for item in evidence:
        if not isinstance(item, dict) or not _EVIDENCE_FIELDS.issuperset(item):
            return None
        title, url, excerpt = item.get("title"), item.get("url", ""), item.get("excerpt", "")
        if not (
            _plain_text(title, _EVIDENCE["title"].max_length)
            and _plain_text(url, _EVIDENCE["url"].max_length, blank=True)
            and _plain_text(excerpt, _EVIDENCE["excerpt"].max_length, blank=True)
        ):
            return None
        items.append({"title": title, "url": url, "excerpt": excerpt})
    return {
        "action_type": action_type,
        "params": params,
        "evidence": items,
        "summary": summary,
        "confidence": None if confidence is None else float(confidence),
        "context": context,
        "callback_url": "",
    }


def submission_validated(data: Any) -> dict[str, Any]:
    """A submission's body, validated as ``ActionSubmitInputSerializer`` does (its errors raised as it raises them)."""
    plain = _submission_plain(data)
    if plain is not None:
        return plain
    serializer = ActionSubmitInputSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class PolicyRefSerializer(serializers.Serializer):
    id = serializers.IntegerField(allow_null=True)
    action_pattern = serializers.CharField(allow_null=True)
    version = serializers.IntegerField()


class DecisionOutputSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=["approved", "rejected"])
    reviewer = serializers.CharField()
    reason_category = serializers.CharField(
        allow_null=True,
        help_text="On a rejection, the reviewer's category (a slug of COUNTERSIGN_REJECT_REASONS, e.g. wrong_recipient).",
    )
    reason = serializers.CharField()
    note = serializers.CharField()
    decided_at = serializers.DateTimeField()


class LinksSerializer(serializers.Serializer):
    self = serializers.CharField()
    wait = serializers.CharField()
    cancel = serializers.CharField()
    execution = serializers.CharField()
    execution_start = serializers.CharField()


class ExecutionOutputSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["succeeded", "failed"])
    result = serializers.JSONField(allow_null=True)
    executed_at = serializers.DateTimeField()


class ActionRequestOutputSerializer(serializers.Serializer):
    """Documents the shape built by approvals.representation.action_request_as_agent_sees_it."""

    id = serializers.UUIDField()
    action_type = serializers.CharField()
    status = serializers.ChoiceField(
        choices=["allowed", "blocked", "pending", "approved", "rejected", "expired", "cancelled", "executed", "lapsed"]
    )
    mode = serializers.ChoiceField(choices=["auto", "log", "approve", "block"])
    risk = serializers.ChoiceField(choices=["low", "medium", "high", "critical"])
    policy = PolicyRefSerializer()
    reason = serializers.CharField(help_text="Why the policy table decided as it did.")
    params = serializers.DictField(help_text="The parameters as the agent proposed them.")
    approved_params = serializers.DictField(
        allow_null=True, help_text="The parameters a human approved (maybe edited)."
    )
    final_params = serializers.DictField(allow_null=True, help_text="The parameters the agent may execute, once known.")
    edited = serializers.BooleanField()
    decision = DecisionOutputSerializer(allow_null=True)
    final_params_hash = serializers.CharField(
        allow_null=True, help_text="SHA-256 of the canonical JSON of final_params; send it back when reporting."
    )
    approval_token = serializers.CharField(
        allow_null=True,
        help_text="Shown to the owning agent while the request is approved; send it back when reporting execution.",
    )
    execution = ExecutionOutputSerializer(allow_null=True, help_text="The agent's report, once executed.")
    execution_started_at = serializers.DateTimeField(
        allow_null=True, help_text="When the agent claimed the one run (POST .../execution/start), if it did."
    )
    context = serializers.DictField()
    traceparent = serializers.CharField(
        allow_null=True,
        help_text="The W3C trace context this request's spans join (from the `traceparent` header or "
        "`context.traceparent`); null when none was sent or it was not valid.",
    )
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True)
    decided_at = serializers.DateTimeField(allow_null=True)
    approval_expires_at = serializers.DateTimeField(allow_null=True)
    links = LinksSerializer()
    duplicate = serializers.BooleanField(
        required=False,
        help_text=(
            "Only in a submission's answer: true when it repeated one of the agent's pending requests (no new card)."
        ),
    )
    duplicate_of = serializers.UUIDField(required=False, help_text="The pending request it repeated (its id).")


class ExecutionReportInputSerializer(StrictSerializer):
    status = serializers.ChoiceField(choices=["succeeded", "failed"])
    result = serializers.JSONField(required=False, allow_null=True, default=None)
    approval_token = StrictCharField(max_length=200, required=False, allow_null=True, default=None)
    params_hash = StrictCharField(max_length=64, required=False, allow_null=True, default=None)


class ExecutionStartInputSerializer(StrictSerializer):
    approval_token = StrictCharField(max_length=200, required=False, allow_null=True, default=None)
    params_hash = StrictCharField(max_length=64, required=False, allow_null=True, default=None)
    run_id = StrictCharField(
        max_length=64,
        required=False,
        default="",
        help_text="Your name for this run (e.g. a random UUID). Repeating a start with the same run_id "
        "(its answer was lost) is answered 200 again; any other caller is refused.",
    )


class ActionTypeSchemaOutputSerializer(serializers.Serializer):
    action_type = serializers.CharField()
    schema = serializers.DictField(help_text="The JSON Schema (draft 2020-12) reviewers' edited params must satisfy.")
    registered_by = serializers.CharField(allow_null=True, help_text="The agent that registered it.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
