"""The reviewer API (/api/v1/review/): the queue, one request, decide, batch, claims and history.

A door like the queue page: it authenticates the reviewer (personal access token or session),
parses, and calls the same selectors and services. Visibility, separation of duties, quorum,
the revision seen and the deadline are checked by ``action_request_decide``, never here.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals.models import AfterReviewLabelKind, Decision, Surface
from approvals.selectors import QUEUE_SORTS, RISK_RANK, after_review_page, quorum_approvals
from approvals.services import (
    BATCH_LIMIT,
    action_request_decide,
    action_request_label,
    action_requests_decide_batch,
)
from core.errors import NotFound
from core.serializers import JSONObjectField, StrictCharField, StrictSerializer, error_doc

from ..selectors import (
    HISTORY_STATUSES,
    history_filters_from,
    history_page,
    history_row_as_json,
    queue_state,
    review_request_get,
)
from ..services import claim_open, claim_release
from .authentication import REVIEWER_AUTHENTICATION, IsReviewer

AUTH_ERRORS = {
    401: error_doc(
        "No valid credentials: no token or session (`not_authenticated`), an agent API key (`wrong_token_kind`), "
        "an expired token (`token_expired`) or a revoked one (`token_revoked`)."
    ),
    403: error_doc(
        "Not a member of a reviewer group (`permission_denied`); a session write without its CSRF token "
        "(`permission_denied`); a read-only token on a write (`token_read_only`)."
    ),
}
NOT_VISIBLE = error_doc(
    "No such request, or it is routed to a group you are not in: to you it does not exist (`not_found`)."
)


class StrictUUIDField(serializers.UUIDField):
    """A UUID as a JSON string only: DRF's field would also take an integer (``false`` is UUID 0)."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid", value=data)
        return super().to_internal_value(data)


class ReviewerAPIView(APIView):
    authentication_classes = REVIEWER_AUTHENTICATION
    permission_classes = [IsReviewer]


# --- shapes ------------------------------------------------------------------------------------


@extend_schema_serializer(component_name="ReviewEvidence")
class EvidenceSerializer(serializers.Serializer):
    title = serializers.CharField()
    url = serializers.CharField()
    href = serializers.CharField(allow_null=True, help_text="The URL when it is http(s), else null: never a link.")
    excerpt = serializers.CharField()


@extend_schema_serializer(component_name="ReviewCard")
class CardSerializer(serializers.Serializer):
    """A queue card: what the reviewer decides on. Agent-supplied text (summary, params, evidence) is untrusted."""

    id = serializers.UUIDField()
    revision = serializers.IntegerField(help_text="Send it back as `revision` when deciding.")
    action_type = serializers.CharField()
    agent = serializers.CharField()
    summary = serializers.CharField()
    params = serializers.JSONField()
    key_params = serializers.ListField(child=serializers.CharField())
    params_schema = serializers.JSONField(allow_null=True)
    history = serializers.DictField(child=serializers.IntegerField(), help_text="This agent's past outcomes.")
    evidence = EvidenceSerializer(many=True)
    evidence_total = serializers.IntegerField()
    confidence = serializers.FloatField(allow_null=True)
    mode = serializers.CharField()
    risk = serializers.CharField()
    policy = serializers.CharField()
    policy_version = serializers.IntegerField(allow_null=True)
    reason = serializers.CharField()
    required_approvals = serializers.IntegerField()
    approved_by = serializers.ListField(child=serializers.CharField())
    reviewer_group = serializers.CharField(allow_null=True)
    trace_id = serializers.CharField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()


@extend_schema_serializer(component_name="ReviewClaim")
class ClaimSerializer(serializers.Serializer):
    by = serializers.CharField()
    expires_at = serializers.DateTimeField()


# --- the queue -----------------------------------------------------------------------------------

QUEUE_PARAMETERS = [
    OpenApiParameter("action_type", str, description="Only this action type."),
    OpenApiParameter("agent", str, description="Only this agent (by name)."),
    OpenApiParameter("risk", str, enum=["", *RISK_RANK], description="Only this risk (empty: any)."),
    OpenApiParameter("group", str, description="Only requests routed to this reviewer group."),
    OpenApiParameter("mine", str, description="`1`, `true` or `on`: routed to my groups, or claimed by me."),
    OpenApiParameter("q", str, description="Search summary, action type and agent."),
    OpenApiParameter("sort", str, enum=["", *QUEUE_SORTS], description="`deadline` (default) or `risk`."),
    OpenApiParameter("cursor", str, description="`next_cursor` of the previous page."),
    OpenApiParameter("counts", str, description="`0` skips the facet counts (`total` is then -1)."),
]


class QueueView(ReviewerAPIView):
    @extend_schema_serializer(component_name="ReviewQueue")
    class OutputSerializer(serializers.Serializer):
        cards = CardSerializer(many=True)
        total = serializers.IntegerField(help_text="Cards matching the filters; -1 when counts=0.")
        next_cursor = serializers.CharField(allow_null=True)
        counts = serializers.DictField(
            child=serializers.DictField(child=serializers.IntegerField()),
            help_text="Per facet (action_type, agent, risk, group): the count of each value.",
        )
        claims = serializers.DictField(child=ClaimSerializer(), help_text="Who has which card open, by request id.")
        filters = serializers.DictField()
        pauses = serializers.ListField(child=serializers.DictField(), help_text="Kill switches in force.")

    @extend_schema(
        operation_id="review_queue",
        summary="The reviewer's queue: the pending requests they may decide",
        description="The same filters, sort and keyset pages as the queue page.",
        parameters=QUEUE_PARAMETERS,
        responses={
            200: OutputSerializer,
            422: error_doc("A bad filter (`invalid_filter`), sort (`invalid_sort`) or cursor (`invalid_cursor`)."),
            **AUTH_ERRORS,
        },
    )
    def get(self, request):
        return Response(queue_state(user=request.user, params=request.query_params))


# --- one request -------------------------------------------------------------------------------------


class RequestView(ReviewerAPIView):
    @extend_schema_serializer(component_name="ReviewRequest")
    class OutputSerializer(CardSerializer):
        status = serializers.CharField(help_text="pending, approved, rejected, expired, lapsed, executed…")
        claim = ClaimSerializer(allow_null=True)

    @extend_schema(
        operation_id="review_request",
        summary="One request as the reviewer sees it (its card, with the revision to decide on)",
        responses={200: OutputSerializer, 404: NOT_VISIBLE, **AUTH_ERRORS},
    )
    def get(self, request, request_id):
        return Response(review_request_get(user=request.user, request_id=request_id))


# --- deciding ---------------------------------------------------------------------------------------------

DECIDE_CONFLICTS = error_doc(
    "Not decided: someone decided first (`already_decided`), the request changed since that revision "
    "(`request_changed`: read it again), it expired (`request_expired`), was cancelled (`not_pending`), "
    "or you already voted on it (`already_voted`)."
)


class DecideView(ReviewerAPIView):
    @extend_schema_serializer(component_name="ReviewDecision")
    class InputSerializer(StrictSerializer):
        decision = serializers.ChoiceField(choices=["approve", "reject"])
        revision = serializers.IntegerField(
            min_value=0, help_text="The `revision` of the card you decided on: a request that changed is refused."
        )
        params = JSONObjectField(
            required=False, help_text="Approve with these params instead of the agent's (checked against its schema)."
        )
        reason_category = StrictCharField(
            required=False, allow_blank=True, max_length=50, help_text="A rejection's category (required to reject)."
        )
        reason = StrictCharField(required=False, allow_blank=True, max_length=5000, help_text="Required to reject.")
        note = StrictCharField(required=False, allow_blank=True, max_length=5000)

    @extend_schema_serializer(component_name="ReviewDecisionResult")
    class OutputSerializer(serializers.Serializer):
        id = serializers.UUIDField()
        result = serializers.ChoiceField(
            choices=["decided", "vote_recorded"],
            help_text="`decided`: the request left the queue. `vote_recorded`: an approval counted towards a quorum.",
        )
        status = serializers.CharField(help_text="The request's status now.")
        revision = serializers.IntegerField(help_text="The request's revision now.")
        edited = serializers.BooleanField()
        required_approvals = serializers.IntegerField()
        approved_by = serializers.ListField(child=serializers.CharField())

    @extend_schema(
        operation_id="review_decide",
        summary="Approve (possibly with edited params) or reject a request",
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            403: error_doc(
                "You own the agent that asked (`owner_cannot_approve`), a read-only token (`token_read_only`), "
                "or not a reviewer (`permission_denied`)."
            ),
            404: NOT_VISIBLE,
            409: DECIDE_CONFLICTS,
            422: error_doc(
                "Bad input: a field (`validation_error`, `unknown_field`), a rejection without a reason "
                "(`reason_required`) or category (`reason_category_required`, `invalid_reason_category`), edited "
                "params that break the schema (`invalid_params`) or an edit of a quorum request "
                "(`edit_not_allowed_with_quorum`)."
            ),
            401: AUTH_ERRORS[401],
        },
    )
    def post(self, request, request_id):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        outcome = action_request_decide(
            request_id=request_id,
            reviewer=request.user,
            approve=data["decision"] == "approve",
            final_params=data.get("params"),
            reason=data.get("reason", ""),
            reason_category=data.get("reason_category", ""),
            note=data.get("note", ""),
            seen_revision=data["revision"],
            surface=Surface.API,
        )
        decided = outcome.request
        return Response(
            {
                "id": str(decided.pk),
                "result": "decided" if isinstance(outcome, Decision) else "vote_recorded",
                "status": decided.status,
                "revision": decided.revision,
                "edited": outcome.edited,
                "required_approvals": decided.required_approvals,
                "approved_by": quorum_approvals([decided]).get(str(decided.pk), []),
            }
        )


class BatchView(ReviewerAPIView):
    @extend_schema_serializer(component_name="ReviewBatch")
    class InputSerializer(StrictSerializer):
        @extend_schema_serializer(component_name="ReviewBatchItem")
        class ItemSerializer(StrictSerializer):
            id = StrictUUIDField()
            revision = serializers.IntegerField(min_value=0)

        decision = serializers.ChoiceField(choices=["approve", "reject"])
        items = ItemSerializer(many=True, allow_empty=False, max_length=BATCH_LIMIT)
        reason_category = StrictCharField(required=False, allow_blank=True, max_length=50)
        reason = StrictCharField(required=False, allow_blank=True, max_length=5000)
        note = StrictCharField(required=False, allow_blank=True, max_length=5000)

    @extend_schema_serializer(component_name="ReviewBatchResults")
    class OutputSerializer(serializers.Serializer):
        @extend_schema_serializer(component_name="ReviewBatchResult")
        class ResultSerializer(serializers.Serializer):
            id = serializers.UUIDField()
            ok = serializers.BooleanField()
            status = serializers.CharField(required=False, help_text="When ok: the request's status now.")
            code = serializers.CharField(required=False, help_text="When refused: why (as the decide endpoint).")
            message = serializers.CharField(required=False)

        results = ResultSerializer(many=True)

    @extend_schema(
        operation_id="review_batch",
        summary="Approve or reject several requests of one action type, each decided on its own",
        description=f"At most {BATCH_LIMIT} items. One refused item (changed, expired, decided by someone "
        "else) does not stop the others; its result says why.",
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            422: error_doc(
                "Bad input for every item alike: a field (`validation_error`, `unknown_field`), mixed action types "
                "(`mixed_action_types`), a rejection without reason or category (`reason_required`, "
                "`reason_category_required`, `invalid_reason_category`)."
            ),
            **AUTH_ERRORS,
        },
    )
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        results = action_requests_decide_batch(
            reviewer=request.user,
            items=[(str(item["id"]), item["revision"]) for item in data["items"]],
            approve=data["decision"] == "approve",
            reason=data.get("reason", ""),
            reason_category=data.get("reason_category", ""),
            note=data.get("note", ""),
            surface=Surface.API,
        )
        return Response({"results": results})


# --- claims -------------------------------------------------------------------------------------------------


class ClaimView(ReviewerAPIView):
    @extend_schema_serializer(component_name="ReviewClaimResult")
    class OutputSerializer(serializers.Serializer):
        claim = ClaimSerializer()
        yours = serializers.BooleanField(help_text="False: someone else has it open (a claim is advisory only).")

    @extend_schema_serializer(component_name="ReviewReleaseResult")
    class ReleaseOutputSerializer(serializers.Serializer):
        released = serializers.BooleanField(help_text="False: you held no claim on it.")

    @extend_schema(
        operation_id="review_claim",
        summary="Mark a pending request as being reviewed by you (or renew your mark)",
        description="Advisory: it tells others someone is on it, and lapses after COUNTERSIGN_CLAIM_TIMEOUT_SECONDS "
        "unless renewed. A live claim of someone else's is left alone and returned.",
        request=None,
        responses={
            200: OutputSerializer,
            404: error_doc("Not a pending request you may see (`not_found`)."),
            **AUTH_ERRORS,
        },
    )
    def post(self, request, request_id):
        claim = claim_open(request_id=request_id, user=request.user)
        if claim is None:
            raise NotFound(f"No pending action request {request_id} for you to claim.")
        return Response({"claim": claim, "yours": claim["by"] == request.user.get_username()})

    @extend_schema(
        operation_id="review_release",
        summary="Drop your claim on a request",
        request=None,
        responses={200: ReleaseOutputSerializer, **AUTH_ERRORS},
    )
    def delete(self, request, request_id):
        return Response({"released": claim_release(request_id=request_id, user=request.user)})


# --- history -----------------------------------------------------------------------------------------------


class HistoryView(ReviewerAPIView):
    @extend_schema_serializer(component_name="ReviewHistoryPage")
    class OutputSerializer(serializers.Serializer):
        @extend_schema_serializer(component_name="ReviewHistoryRow")
        class RowSerializer(serializers.Serializer):
            @extend_schema_serializer(component_name="ReviewHistoryVote")
            class VoteSerializer(serializers.Serializer):
                reviewer = serializers.CharField()
                approve = serializers.BooleanField()
                reason = serializers.CharField()
                reason_category = serializers.CharField()
                note = serializers.CharField()
                at = serializers.DateTimeField()

            @extend_schema_serializer(component_name="ReviewHistoryExecution")
            class ExecutionSerializer(serializers.Serializer):
                state = serializers.CharField()
                at = serializers.DateTimeField(allow_null=True)

            id = serializers.UUIDField()
            status = serializers.CharField()
            action_type = serializers.CharField()
            agent = serializers.CharField()
            summary = serializers.CharField()
            reviewer_group = serializers.CharField(allow_null=True)
            reviewer = serializers.CharField()
            surface = serializers.CharField(allow_null=True, help_text="Where it was decided (web, batch, api…).")
            edited = serializers.BooleanField()
            reason_category = serializers.CharField()
            reason = serializers.CharField()
            votes = VoteSerializer(many=True)
            created_at = serializers.DateTimeField()
            finished_at = serializers.DateTimeField()
            seconds_to_decide = serializers.FloatField(allow_null=True)
            execution = ExecutionSerializer(allow_null=True)

        rows = RowSerializer(many=True)
        next_cursor = serializers.CharField(allow_null=True)

    @extend_schema(
        operation_id="review_history",
        summary="Finished requests you may see, most recently finished first (the history page's filters)",
        parameters=[
            OpenApiParameter("q", str, description="Search summary, action, agent, reviewer, reason or request id."),
            OpenApiParameter(
                "status", str, enum=["", *HISTORY_STATUSES], description="Only this status (empty: finished)."
            ),
            OpenApiParameter("policy", str, description="`1`, `true` or `on`: include allowed/blocked by policy."),
            OpenApiParameter("action_type", str),
            OpenApiParameter("agent", str),
            OpenApiParameter("reviewer", str),
            OpenApiParameter("mine", str, description="`1`, `true` or `on`: decided or voted on by me."),
            OpenApiParameter("since", str, description="Finished on or after this date (YYYY-MM-DD; empty: any)."),
            OpenApiParameter("until", str, description="Finished on or before this date (YYYY-MM-DD; empty: any)."),
            OpenApiParameter("cursor", str, description="`next_cursor` of the previous page."),
        ],
        responses={
            200: OutputSerializer,
            422: error_doc("A bad status (`invalid_status`), date (`invalid_date`) or cursor (`validation_error`)."),
            **AUTH_ERRORS,
        },
    )
    def get(self, request):
        params = request.query_params
        page = history_page(user=request.user, filters=history_filters_from(params), cursor=params.get("cursor"))
        return Response({"rows": [history_row_as_json(row) for row in page.rows], "next_cursor": page.next_cursor})


# --- review afterwards -------------------------------------------------------------------------


class AfterwardsView(ReviewerAPIView):
    @extend_schema_serializer(component_name="ReviewAfterwardsPage")
    class OutputSerializer(serializers.Serializer):
        @extend_schema_serializer(component_name="ReviewAfterwardsItem")
        class ItemSerializer(serializers.Serializer):
            id = serializers.UUIDField()
            action_type = serializers.CharField()
            agent = serializers.CharField()
            mode = serializers.CharField(help_text="`log` (every one is reviewed) or `auto` (sampled).")
            policy = serializers.CharField(help_text="The pattern of the policy that let it through.")
            summary = serializers.CharField()
            params = serializers.DictField()
            confidence = serializers.FloatField(allow_null=True)
            created_at = serializers.DateTimeField()

        results = ItemSerializer(many=True)
        next_cursor = serializers.CharField(allow_null=True)

    @extend_schema(
        operation_id="review_afterwards",
        summary="Requests that ran without a reviewer and wait for your label, oldest first",
        parameters=[OpenApiParameter("cursor", str, description="`next_cursor` of the previous page.")],
        responses={
            200: OutputSerializer,
            422: error_doc("A cursor this list did not give out (`invalid_cursor`)."),
            **AUTH_ERRORS,
        },
    )
    def get(self, request):
        page = after_review_page(user=request.user, cursor=request.query_params.get("cursor") or None)
        return Response(
            {
                "results": [
                    {
                        "id": str(item.pk),
                        "action_type": item.action_type,
                        "agent": item.agent.name,
                        "mode": item.mode,
                        "policy": item.policy_pattern,
                        "summary": item.summary,
                        "params": item.params,
                        "confidence": item.confidence,
                        "created_at": item.created_at,
                    }
                    for item in page.requests
                ],
                "next_cursor": page.next_cursor,
            }
        )


class LabelView(ReviewerAPIView):
    @extend_schema_serializer(component_name="ReviewLabel")
    class InputSerializer(StrictSerializer):
        label = serializers.ChoiceField(choices=AfterReviewLabelKind.values)
        reason_category = StrictCharField(
            required=False, allow_blank=True, max_length=50, help_text="What went wrong (required for a flag)."
        )
        note = StrictCharField(required=False, allow_blank=True, max_length=2000)

    @extend_schema_serializer(component_name="ReviewLabelResult")
    class OutputSerializer(serializers.Serializer):
        id = serializers.UUIDField()
        label = serializers.CharField()
        reason_category = serializers.CharField()
        labelled_at = serializers.DateTimeField()

    @extend_schema(
        operation_id="review_label",
        summary="Label a request that ran without a reviewer: fine, should have asked, should have been blocked",
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            404: NOT_VISIBLE,
            409: error_doc(
                "Someone labelled it first (`already_labelled`), or it is not waiting for a label (`not_due`)."
            ),
            422: error_doc("A bad field (`validation_error`, `unknown_field`), or a flag without a reason category."),
            **AUTH_ERRORS,
        },
    )
    def post(self, request, request_id):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        labelled = action_request_label(
            request_id=request_id,
            reviewer=request.user,
            label=data["label"],
            reason_category=data.get("reason_category", ""),
            note=data.get("note", ""),
            surface=Surface.API,
        )
        return Response(
            {
                "id": str(labelled.request_id),
                "label": labelled.label,
                "reason_category": labelled.reason_category,
                "labelled_at": labelled.labelled_at,
            }
        )
