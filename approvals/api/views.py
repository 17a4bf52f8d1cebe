from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals.representation import action_request_as_agent_sees_it
from approvals.selectors import action_request_get_for_agent
from approvals.services import (
    Submission,
    action_request_cancel,
    action_request_report_execution,
    action_request_settle_time,
    action_request_start_execution,
    action_request_submit,
    rate_limit_headers,
)
from core.errors import InvalidInput
from core.serializers import error_doc
from core.tracing import traceparent_normalised

from .authentication import RememberedAgentKeyAuthentication
from .serializers import (
    ActionRequestOutputSerializer,
    ActionSubmitInputSerializer,
    ExecutionReportInputSerializer,
    ExecutionStartInputSerializer,
    submission_validated,
)

AUTH_ERRORS = {401: error_doc("Missing, unknown or revoked API key (`not_authenticated`).")}
NOT_FOUND = {404: error_doc("No such request for this agent (`not_found`); other agents' requests are never visible.")}

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description=(
        "Any string up to 255 characters. A retry with the same key and body returns the original request "
        "(200); the same key with a different body is refused (409). A replay is never rate limited. Without a key, "
        "a submission identical to one of this agent's pending requests (same action type, params and task "
        "context keys, e.g. `task_id`, `session_id`) returns that request (200, `duplicate: true`)."
    ),
)
TRACEPARENT = OpenApiParameter(
    "traceparent",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description=(
        "W3C trace context of the agent's current span (`00-<trace id>-<span id>-<flags>`), or send it as "
        "`context.traceparent`; the header wins. Countersign's spans for this request (submit, verdict, "
        "pending, decision, execution) join that trace when tracing is configured. An invalid value is "
        "ignored, as the W3C specification asks."
    ),
)
RATE_LIMITED = {
    429: error_doc(
        "Refused, nothing written: over the agent's or its API key's submissions per minute (`rate_limited`; "
        "wait `Retry-After` seconds; `details.limit`, `details.scope`), or the agent already has its cap of "
        "requests waiting for a reviewer (`too_many_pending`; `details.pending`, `details.max_pending`)."
    )
}


class ActionSubmitView(APIView):
    # The submit service confirms a remembered agent before it acts (approvals.selectors.agent_keys).
    authentication_classes = [RememberedAgentKeyAuthentication]

    @extend_schema(
        operation_id="actions_submit",
        summary="Propose an action",
        request=ActionSubmitInputSerializer,
        parameters=[IDEMPOTENCY_KEY, TRACEPARENT],
        responses={
            201: OpenApiResponse(ActionRequestOutputSerializer, description="Created: allowed, blocked or pending."),
            200: OpenApiResponse(
                description=(
                    "Replay of an earlier submission (same Idempotency-Key), or, with `duplicate: true` and "
                    "`duplicate_of`, the pending request this submission repeats."
                ),
            ),
            400: error_doc("The body is not valid JSON (`malformed_json`)."),
            409: error_doc("Idempotency-Key reused with a different body (`idempotency_conflict`)."),
            413: error_doc("Body larger than COUNTERSIGN_MAX_BODY_BYTES (`payload_too_large`)."),
            415: error_doc("Body is not JSON (`unsupported_media_type`)."),
            422: error_doc(
                "Missing, mistyped or unknown fields (`validation_error`, `unknown_field`), or an "
                "Idempotency-Key longer than 255 characters (`invalid_idempotency_key`)."
            ),
            **RATE_LIMITED,
            **AUTH_ERRORS,
        },
    )
    def post(self, request):
        idempotency_key = request.headers.get("Idempotency-Key") or None
        if idempotency_key is not None and len(idempotency_key) > 255:
            raise InvalidInput("Idempotency-Key must be at most 255 characters.", code="invalid_idempotency_key")
        data = submission_validated(request.data)
        result = action_request_submit(
            agent=request.user,
            submission=Submission(
                action_type=data["action_type"],
                params=data["params"],
                summary=data["summary"],
                evidence=[dict(item) for item in data["evidence"]],
                confidence=data["confidence"],
                context=data["context"],
                callback_url=data["callback_url"],
                traceparent=traceparent_normalised(request.headers.get("traceparent"))
                or traceparent_normalised(data["context"].get("traceparent")),
            ),
            idempotency_key=idempotency_key,
        )
        body = action_request_as_agent_sees_it(result.request)
        if result.duplicate:
            body["duplicate"] = True
            body["duplicate_of"] = body["id"]
        headers = {"Location": body["links"]["self"]}
        if result.rate is not None:
            headers.update(rate_limit_headers(result.rate))
        return Response(body, status=201 if result.created else 200, headers=headers)


class ActionDetailView(APIView):
    @extend_schema(
        operation_id="actions_retrieve",
        summary="Read an action request",
        responses={200: ActionRequestOutputSerializer, **AUTH_ERRORS, **NOT_FOUND},
    )
    def get(self, request, request_id):
        action = action_request_get_for_agent(agent=request.user, request_id=request_id)
        return Response(action_request_as_agent_sees_it(action_request_settle_time(action)))


class ActionCancelView(APIView):
    @extend_schema(
        operation_id="actions_cancel",
        summary="Withdraw a pending request",
        request=None,
        responses={
            200: ActionRequestOutputSerializer,
            409: error_doc(
                "Not pending any more (`already_decided`, `request_expired`, `request_cancelled`, `not_pending`)."
            ),
            **AUTH_ERRORS,
            **NOT_FOUND,
        },
    )
    def post(self, request, request_id):
        action = action_request_cancel(agent=request.user, request_id=request_id)
        return Response(action_request_as_agent_sees_it(action))


class ActionExecutionView(APIView):
    @extend_schema(
        operation_id="actions_report_execution",
        summary="Report the outcome of running an approved or allowed action (once)",
        description=(
            "Send `status` (`succeeded` or `failed`), an optional `result`, and for approved requests the "
            "`approval_token` and the `params_hash` (the `final_params_hash` of the approval) of the params you ran. "
            "Every refused report is recorded as a violation in the audit trail."
        ),
        request=ExecutionReportInputSerializer,
        responses={
            200: OpenApiResponse(ActionRequestOutputSerializer, description="Recorded: the request is `executed`."),
            400: error_doc("The body is not valid JSON (`malformed_json`)."),
            403: error_doc("The approval token is missing or wrong (`invalid_approval_token`)."),
            409: error_doc(
                "Refused: reported already (`already_reported`), after `approval_expires_at` (`approval_expired`), "
                "for other params (`params_mismatch`), for a request never approved (`not_approved`), or for an "
                "approval a pause revoked before its run started (`approval_revoked`)."
            ),
            415: error_doc("Body is not JSON (`unsupported_media_type`)."),
            422: error_doc(
                "Missing, mistyped or unknown fields (`validation_error`, `unknown_field`), or an "
                "Idempotency-Key longer than 255 characters (`invalid_idempotency_key`)."
            ),
            **AUTH_ERRORS,
            **NOT_FOUND,
        },
    )
    def post(self, request, request_id):
        serializer = ExecutionReportInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        action = action_request_report_execution(
            agent=request.user,
            request_id=request_id,
            outcome=data["status"],
            result=data["result"],
            approval_token=data["approval_token"],
            reported_params_hash=data["params_hash"],
        )
        return Response(action_request_as_agent_sees_it(action))


class ActionExecutionStartView(APIView):
    @extend_schema(
        operation_id="actions_start_execution",
        summary="Claim the one run of an approved or allowed action, before running it",
        description=(
            "Send the `approval_token` and the `params_hash` (the `final_params_hash` of the approval) of the "
            "params you are about to run. Exactly one caller wins, across processes; the others get "
            "`execution_already_started` and must not run the action. Every refused start is recorded as a "
            "violation in the audit trail. The outcome is then reported with `POST .../execution`."
        ),
        request=ExecutionStartInputSerializer,
        responses={
            200: OpenApiResponse(
                ActionRequestOutputSerializer, description="Claimed: run the action now; `execution_started_at` is set."
            ),
            400: error_doc("The body is not valid JSON (`malformed_json`)."),
            403: error_doc("The approval token is missing or wrong (`invalid_approval_token`)."),
            409: error_doc(
                "Refused: already started (`execution_already_started`), already reported (`already_reported`), "
                "after `approval_expires_at` (`approval_expired`), for other params (`params_mismatch`), for a "
                "request never approved (`not_approved`), or because staff paused this agent or action type before "
                "the run started (`approval_revoked`: the approval is revoked for good, even after the resume)."
            ),
            415: error_doc("Body is not JSON (`unsupported_media_type`)."),
            422: error_doc("Missing, mistyped or unknown fields (`validation_error`, `unknown_field`)."),
            **AUTH_ERRORS,
            **NOT_FOUND,
        },
    )
    def post(self, request, request_id):
        serializer = ExecutionStartInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        action = action_request_start_execution(
            agent=request.user,
            request_id=request_id,
            approval_token=data["approval_token"],
            params_hash=data["params_hash"],
            run_id=data["run_id"],
        )
        return Response(action_request_as_agent_sees_it(action))
