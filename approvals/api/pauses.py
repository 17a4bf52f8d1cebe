"""The kill switch's staff API: pause and resume an agent or an action type, list the pauses in force.

For people, never agents: a staff session or ``Authorization: Token <staff token>``, with the
model permission on pauses (view to list, change to pause and resume). Every write is a service.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals.selectors import pause_as_json, pauses_active
from approvals.services import (
    PauseOutcome,
    action_type_pause,
    action_type_resume,
    agent_pause,
    agent_resume,
)
from approvals.services.pauses import REASON_MAX_CHARS
from core.permissions import StaffModelPermission
from core.serializers import StrictCharField, StrictSerializer, error_doc
from policies.api.authentication import STAFF_AUTHENTICATION


class IsPauseAdmin(StaffModelPermission):
    """Active staff with the model permission: view_pause to list, change_pause to pause and resume."""

    message = "Only staff with permission on pauses may use this endpoint."
    read_permission = "approvals.view_pause"
    write_permission = "approvals.change_pause"


class PauseSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=["agent", "action_type"])
    target = serializers.CharField(help_text="The agent's name, or the action type.")
    reason = serializers.CharField()
    paused_by = serializers.CharField()
    paused_at = serializers.DateTimeField()
    resumed_by = serializers.CharField(allow_null=True)
    resumed_at = serializers.DateTimeField(allow_null=True)


class PauseListOutputSerializer(serializers.Serializer):
    pauses = PauseSerializer(many=True)


class PauseInputSerializer(StrictSerializer):
    reason = StrictCharField(
        max_length=REASON_MAX_CHARS, help_text="Why (required). Reviewers see it on the queue page's banner."
    )


class PauseOutputSerializer(serializers.Serializer):
    pause = PauseSerializer()
    cancelled = serializers.IntegerField(help_text="Pending requests cancelled by this pause.")
    revoked = serializers.IntegerField(help_text="Approvals whose run had not started, revoked by this pause.")


AUTH = {
    401: error_doc("No staff session and no valid `Authorization: Token <staff token>` (`not_authenticated`)."),
    403: error_doc("Not staff, or missing the view/change permission on pauses (`permission_denied`)."),
}
PAUSE_ERRORS = {
    400: error_doc("The body is not valid JSON (`malformed_json`)."),
    409: error_doc("Already paused (`already_paused`; `details.pause` is the pause in force): resume it first."),
    413: error_doc("Body larger than COUNTERSIGN_MAX_BODY_BYTES (`payload_too_large`)."),
    415: error_doc("Body is not JSON (`unsupported_media_type`)."),
}
PAUSED = OpenApiResponse(
    PauseOutputSerializer,
    description="Paused: new submissions are blocked, pending requests cancelled, unstarted approvals revoked.",
)
RESUMED = OpenApiResponse(
    PauseSerializer, description="Resumed: new submissions meet the policy table again; nothing else changes."
)
DESCRIPTION = (
    "While paused, submissions are recorded as `blocked` with reason `{code}` whatever the policy table says; "
    "pausing cancels the pending requests (with a webhook) and revokes approvals whose run has not started "
    "(`409 approval_revoked` at `execution/start`); a run already started is still reported. Resuming "
    "restores submissions only."
)


def _reason(request) -> str:
    serializer = PauseInputSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data["reason"]


def _paused(outcome: PauseOutcome) -> Response:
    body = {"pause": pause_as_json(outcome.pause), "cancelled": outcome.cancelled, "revoked": outcome.revoked}
    return Response(body, status=201)


class StaffAPIView(APIView):
    authentication_classes = STAFF_AUTHENTICATION
    permission_classes = [IsPauseAdmin]


class PauseListView(StaffAPIView):
    @extend_schema(
        operation_id="pauses_list",
        summary="The pauses in force (agents and action types), oldest first",
        responses={200: PauseListOutputSerializer, **AUTH},
    )
    def get(self, request):
        return Response({"pauses": [pause_as_json(pause) for pause in pauses_active()]})


class AgentPauseView(StaffAPIView):
    @extend_schema(
        operation_id="agents_pause",
        summary="Pause an agent (kill switch)",
        description=DESCRIPTION.format(code="agent_paused"),
        request=PauseInputSerializer,
        responses={
            201: PAUSED,
            404: error_doc("No agent has this name (`agent_not_found`)."),
            422: error_doc("No reason, or an unknown field (`validation_error`, `unknown_field`, `reason_required`)."),
            **PAUSE_ERRORS,
            **AUTH,
        },
    )
    def post(self, request, name):
        return _paused(agent_pause(agent_name=name, reason=_reason(request), by=request.user))

    @extend_schema(
        operation_id="agents_resume",
        summary="Resume a paused agent",
        request=None,
        responses={
            200: RESUMED,
            404: error_doc("No agent has this name (`agent_not_found`), or it is not paused (`not_paused`)."),
            **AUTH,
        },
    )
    def delete(self, request, name):
        return Response(pause_as_json(agent_resume(agent_name=name, by=request.user)))


class ActionTypePauseView(StaffAPIView):
    @extend_schema(
        operation_id="action_types_pause",
        summary="Pause an action type for every agent (kill switch)",
        description=DESCRIPTION.format(code="action_type_paused"),
        request=PauseInputSerializer,
        responses={
            201: PAUSED,
            422: error_doc(
                "No reason, an unknown field, or not an action type name (globs are not accepted) "
                "(`validation_error`, `unknown_field`, `reason_required`, `invalid_action_type`)."
            ),
            **PAUSE_ERRORS,
            **AUTH,
        },
    )
    def post(self, request, name):
        return _paused(action_type_pause(action_type=name, reason=_reason(request), by=request.user))

    @extend_schema(
        operation_id="action_types_resume",
        summary="Resume a paused action type",
        request=None,
        responses={
            200: RESUMED,
            404: error_doc("This action type is not paused (`not_paused`)."),
            422: error_doc("Not an action type name (`invalid_action_type`)."),
            **AUTH,
        },
    )
    def delete(self, request, name):
        return Response(pause_as_json(action_type_resume(action_type=name, by=request.user)))
