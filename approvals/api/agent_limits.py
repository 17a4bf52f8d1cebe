"""Staff read and set an agent's containment limits: ``GET/PUT /api/v1/agents/<name>/limits``."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals.models import Agent
from approvals.selectors import agent_get_by_name, agent_pending_count
from approvals.services import agent_limits_set, agent_max_pending, agent_rate_limits
from core.permissions import StaffModelPermission
from core.serializers import StrictSerializer, error_doc
from policies.api.authentication import STAFF_AUTHENTICATION


class IsAgentAdmin(StaffModelPermission):
    """Staff with the model permission: view_agent to read, change_agent to write."""

    message = "Only staff with permission on agents (view_agent to read, change_agent to write) may use this endpoint."
    read_permission = "approvals.view_agent"
    write_permission = "approvals.change_agent"


def _limit_field(what: str) -> serializers.IntegerField:
    return serializers.IntegerField(allow_null=True, min_value=0, help_text=f"{what} Null: the server default.")


class AgentLimitsInputSerializer(StrictSerializer):
    rate_limit_per_minute = _limit_field("Submissions per minute, all the agent's keys together; 0: no limit.")
    key_rate_limit_per_minute = _limit_field("Submissions per minute per API key, never looser than the agent's.")
    max_pending = _limit_field("Requests waiting for a reviewer at once; 0: no cap.")


class EffectiveLimitsSerializer(serializers.Serializer):
    rate_limit_per_minute = serializers.IntegerField(help_text="0: no limit.")
    key_rate_limit_per_minute = serializers.IntegerField(help_text="0: no limit of its own (the agent's applies).")
    max_pending = serializers.IntegerField(help_text="0: no cap.")


class AgentLimitsOutputSerializer(AgentLimitsInputSerializer):
    agent = serializers.CharField()
    effective = EffectiveLimitsSerializer(help_text="What applies now, the overrides and the defaults combined.")
    pending = serializers.IntegerField(help_text="Requests of this agent waiting for a reviewer now.")


def _as_json(agent: Agent) -> dict[str, Any]:
    per_agent, per_key = agent_rate_limits(agent)
    return {
        "agent": agent.name,
        "rate_limit_per_minute": agent.rate_limit_per_minute,
        "key_rate_limit_per_minute": agent.key_rate_limit_per_minute,
        "max_pending": agent.max_pending,
        "effective": {
            "rate_limit_per_minute": per_agent,
            "key_rate_limit_per_minute": per_key,
            "max_pending": agent_max_pending(agent),
        },
        "pending": agent_pending_count(agent=agent),
    }


ERRORS = {
    401: error_doc("Not logged in and no staff token (`not_authenticated`)."),
    403: error_doc("Not staff, or without view_agent (read) / change_agent (write) (`permission_denied`)."),
    404: error_doc("No agent with this name (`not_found`)."),
}


class AgentLimitsView(APIView):
    authentication_classes = STAFF_AUTHENTICATION
    permission_classes = [IsAgentAdmin]

    @extend_schema(
        operation_id="agent_limits_retrieve",
        summary="Read an agent's rate limits and pending cap",
        responses={200: AgentLimitsOutputSerializer, **ERRORS},
    )
    def get(self, request, name):
        return Response(_as_json(agent_get_by_name(name=name)))

    @extend_schema(
        operation_id="agent_limits_put",
        summary="Set an agent's rate limits and pending cap",
        description=(
            "Send all three fields; `null` returns a field to the server's default (COUNTERSIGN_RATE_LIMIT_PER_MINUTE, "
            "COUNTERSIGN_KEY_RATE_LIMIT_PER_MINUTE, COUNTERSIGN_MAX_PENDING_PER_AGENT). Applies from the agent's "
            "next submission."
        ),
        request=AgentLimitsInputSerializer,
        responses={
            200: OpenApiResponse(AgentLimitsOutputSerializer, description="Saved."),
            422: error_doc("A missing, negative or non-integer field (`validation_error`, `unknown_field`)."),
            **ERRORS,
        },
    )
    def put(self, request, name):
        agent = agent_get_by_name(name=name)
        serializer = AgentLimitsInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(_as_json(agent_limits_set(agent=agent, **serializer.validated_data)))
