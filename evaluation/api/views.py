"""GET /api/v1/decisions/: the evaluation export (JSON pages or streamed JSON Lines)."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Iterator

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Q
from django.http import Http404, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals.api.authentication import AgentKeyAuthentication
from approvals.models import AfterReviewLabel, AfterReviewLabelKind, Agent, hash_api_key
from core.cursors import MalformedCursor, cursor_decode, cursor_encode
from core.errors import InvalidInput, NotFound
from core.serializers import error_doc
from core.timefmt import parse_utc

from ..models import SCOPE_EVALUATION_READ, AgentKeyGrant
from ..records import after_review_record, decision_record, decision_records
from ..release_gate import agent_versions, release_gate
from ..selectors import (
    decision_cursor_encode,
    decision_filters_from,
    decisions_after,
    decisions_filtered,
    parse_timestamp,
)

PAGE_DEFAULT = 100
PAGE_MAX = 1000
STREAM_CHUNK = 2000


def key_has_scope(raw_key: str, scope: str) -> bool:
    grant = AgentKeyGrant.objects.filter(key__key_hash=hash_api_key(raw_key), key__revoked_at__isnull=True).first()
    return bool(grant and scope in grant.scopes)


class CanReadEvaluationData(BasePermission):
    """Staff (Django session) or an agent key holding the ``evaluation:read`` scope."""

    message = "Reading decisions needs a staff session or an API key with the 'evaluation:read' scope."

    def has_permission(self, request, view):
        user = request.user
        if isinstance(user, Agent):
            return isinstance(request.auth, str) and key_has_scope(request.auth, SCOPE_EVALUATION_READ)
        return bool(user and user.is_authenticated and user.is_active and user.is_staff)


class JSONLinesRenderer(BaseRenderer):
    """Lets DRF accept ``?format=jsonl``; the view streams the body itself."""

    media_type = "application/x-ndjson"
    format = "jsonl"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return json.dumps(data).encode()


def jsonl_lines(queryset) -> Iterator[bytes]:
    encoder = DjangoJSONEncoder(separators=(",", ":"))
    for record in decision_records(queryset, chunk_size=STREAM_CHUNK):
        yield (encoder.encode(record) + "\n").encode()


RECORDS_PER_ASYNC_STEP = 500


async def jsonl_lines_async(queryset) -> AsyncIterator[bytes]:
    """The same stream for the ASGI server: given a sync iterator, Django's ASGI handler would
    buffer the whole body first. Each step runs the ORM in the (thread-sensitive) sync thread,
    so the cursor stays on one connection, and yields a few hundred records at a time."""
    lines = jsonl_lines(queryset)

    def step() -> bytes:
        return b"".join(itertools.islice(lines, RECORDS_PER_ASYNC_STEP))

    while chunk := await sync_to_async(step)():
        yield chunk


FILTER_PARAMS = [
    OpenApiParameter("since", OpenApiTypes.DATETIME, description="decided_at >= since"),
    OpenApiParameter("until", OpenApiTypes.DATETIME, description="decided_at < until"),
    OpenApiParameter("action_type", str),
    OpenApiParameter("agent", str, description="Agent name or id."),
    OpenApiParameter("decision", str, enum=["approved", "rejected", "edited", "approved_unedited"]),
    OpenApiParameter(
        "reason_category", str, description="The slug a reason starts with ('pii: ...'), or 'uncategorised'."
    ),
    OpenApiParameter("policy_version", int),
    OpenApiParameter("policy", str, description="The policy's action pattern."),
    OpenApiParameter("cursor", str, description="next_cursor from the previous page."),
    OpenApiParameter("limit", int, description=f"Page size, 1..{PAGE_MAX} (JSON); optional cap for JSON Lines."),
    OpenApiParameter("format", str, enum=["json", "jsonl"]),
]


TYPED_PARAMS = ("since", "until", "decision", "policy_version", "limit", "format")


def refuse_blank(params, names: tuple[str, ...]) -> None:
    """The HTML dashboard's forms send empty filters; these APIs' schemas type them, so "" is refused."""
    blank = [name for name in names if name in params and not params[name]]
    if blank:
        raise InvalidInput(f"Leave out {', '.join(blank)} instead of sending an empty value.", details={"empty": blank})


class DecisionExportView(APIView):
    authentication_classes = [AgentKeyAuthentication, SessionAuthentication]
    permission_classes = [CanReadEvaluationData]
    renderer_classes = [JSONRenderer, JSONLinesRenderer]

    def perform_content_negotiation(self, request, force=False):
        # DRF answers an unknown ?format= with a 404, as if the endpoint did not exist.
        try:
            return super().perform_content_negotiation(request, force=force)
        except Http404:
            raise InvalidInput("'format' must be json or jsonl.") from None

    @extend_schema(
        operation_id="decisions_export",
        parameters=FILTER_PARAMS,
        responses={
            200: OpenApiResponse(description="A page of decision records (schema decision-record.v1) or JSON Lines."),
            401: error_doc("Missing, unknown or revoked API key, and no staff session (`not_authenticated`)."),
            403: error_doc("Neither staff nor a key with evaluation:read (`permission_denied`)."),
            422: error_doc("A filter, the cursor, `limit` or `format` is not valid (`validation_error`)."),
        },
    )
    def get(self, request):
        params = request.query_params
        refuse_blank(params, TYPED_PARAMS)
        filters = decision_filters_from(params)
        queryset = decisions_after(decisions_filtered(filters), params.get("cursor"))
        limit = self._limit(params.get("limit"), streaming=params.get("format") == "jsonl")
        if params.get("format") == "jsonl":
            if limit is not None:
                queryset = queryset[:limit]
            under_asgi = isinstance(request._request, ASGIRequest)
            lines = jsonl_lines_async(queryset) if under_asgi else jsonl_lines(queryset)
            response = StreamingHttpResponse(lines, content_type="application/x-ndjson")
            response["Content-Disposition"] = 'attachment; filename="decisions.jsonl"'
            return response
        page = list(queryset[: limit + 1])
        has_more = len(page) > limit
        page = page[:limit]

        return Response(
            {
                "results": [decision_record(d) for d in page],
                "next_cursor": decision_cursor_encode(page[-1]) if page else params.get("cursor"),
                "has_more": has_more,
            }
        )

    @staticmethod
    def _limit(raw: str | None, *, streaming: bool) -> int | None:
        if raw in (None, ""):
            return None if streaming else PAGE_DEFAULT
        try:
            value = int(raw)
        except ValueError:
            raise InvalidInput("'limit' must be an integer.") from None
        if value < 1 or (not streaming and value > PAGE_MAX):
            raise InvalidInput(f"'limit' must be between 1 and {PAGE_MAX}.")
        return value


class ReleaseGateView(APIView):
    """GET /api/v1/release-gate/?agent=NAME&baseline=v1&candidate=v2: pass, fail or not enough data yet."""

    authentication_classes = [AgentKeyAuthentication, SessionAuthentication]
    permission_classes = [CanReadEvaluationData]

    @extend_schema(
        operation_id="release_gate",
        summary="Compare two versions of an agent over their real decisions",
        parameters=[
            OpenApiParameter("agent", str, required=True, description="The agent's name."),
            OpenApiParameter("baseline", str, required=True, description="The version in production now."),
            OpenApiParameter("candidate", str, required=True, description="The version you want to release."),
        ],
        responses={
            200: OpenApiResponse(
                description=(
                    "`verdict` is `pass`, `fail` or `insufficient_data`, with `reason` and one entry per check "
                    "(`name`, `verdict`, `baseline`, `candidate`, `baseline_n`, `candidate_n`, `z`, `effect`)."
                )
            ),
            401: error_doc("Missing, unknown or revoked API key, and no staff session (`not_authenticated`)."),
            403: error_doc("Neither staff nor a key with evaluation:read (`permission_denied`)."),
            404: error_doc(
                "No such agent, or a version it never sent as `context.agent_version` (`not_found`, "
                "`details.known_versions`)."
            ),
            422: error_doc("`agent`, `baseline` or `candidate` missing, or baseline equal to candidate."),
        },
    )
    def get(self, request):
        params = request.query_params
        missing = [name for name in ("agent", "baseline", "candidate") if not params.get(name, "").strip()]
        if missing:
            raise InvalidInput(f"Give {', '.join(missing)}.", details={"missing": missing})
        baseline, candidate = params["baseline"].strip(), params["candidate"].strip()
        if baseline == candidate:
            raise InvalidInput("baseline and candidate must be two different versions.")
        agent = Agent.objects.filter(name=params["agent"].strip()).first()
        if agent is None:
            raise NotFound(f"No agent named {params['agent'].strip()!r}.")
        known = agent_versions(agent=agent)
        unknown = [version for version in (baseline, candidate) if version not in known]
        if unknown:
            raise NotFound(
                f"{agent.name} never sent context.agent_version {' or '.join(map(repr, unknown))}.",
                details={"known_versions": known[-50:]},
            )
        return Response(release_gate(agent=agent, baseline=baseline, candidate=candidate).as_dict())


LABEL_FILTERS = {
    "fine": Q(label=AfterReviewLabelKind.FINE),
    "flagged": ~Q(label=AfterReviewLabelKind.FINE),
    "should_have_asked": Q(label=AfterReviewLabelKind.SHOULD_HAVE_ASKED),
    "should_have_blocked": Q(label=AfterReviewLabelKind.SHOULD_HAVE_BLOCKED),
}


class AfterReviewExportView(APIView):
    """GET /api/v1/after-reviews/: labelled unattended requests as evaluation data, newest label first."""

    authentication_classes = [AgentKeyAuthentication, SessionAuthentication]
    permission_classes = [CanReadEvaluationData]

    @extend_schema(
        operation_id="after_reviews_export",
        summary="Requests that ran without a reviewer, with the label given afterwards (after-review-record.v1)",
        parameters=[
            OpenApiParameter(
                "audit", str, enum=list(LABEL_FILTERS), description="Only these labels (`flagged`: both flags)."
            ),
            OpenApiParameter("action_type", str),
            OpenApiParameter("agent", str),
            OpenApiParameter("since", OpenApiTypes.DATETIME, description="Labelled at or after (ISO 8601)."),
            OpenApiParameter("until", OpenApiTypes.DATETIME, description="Labelled before (ISO 8601)."),
            OpenApiParameter("cursor", str, description="`next_cursor` of the previous page."),
            OpenApiParameter("limit", int, description=f"1 to {PAGE_MAX} (default {PAGE_DEFAULT})."),
        ],
        responses={
            200: OpenApiResponse(description="`results` (after-review-record.v1), `next_cursor`, `has_more`."),
            401: error_doc("Missing, unknown or revoked API key, and no staff session (`not_authenticated`)."),
            403: error_doc("Neither staff nor a key with evaluation:read (`permission_denied`)."),
            422: error_doc("A filter, the cursor or `limit` is not valid (`validation_error`)."),
        },
    )
    def get(self, request):
        params = request.query_params
        refuse_blank(params, ("audit", "since", "until", "limit", "cursor"))
        labels = AfterReviewLabel.objects.select_related("request__agent").order_by("-labelled_at", "-id")
        audit = params.get("audit")
        if audit is not None:
            if audit not in LABEL_FILTERS:
                raise InvalidInput(f"'audit' must be one of {', '.join(LABEL_FILTERS)}.")
            labels = labels.filter(LABEL_FILTERS[audit])
        if params.get("action_type"):
            labels = labels.filter(request__action_type=params["action_type"])
        if params.get("agent"):
            labels = labels.filter(request__agent__name=params["agent"])
        since, until = (
            parse_timestamp(params.get("since"), name="since"),
            parse_timestamp(params.get("until"), name="until"),
        )
        if since:
            labels = labels.filter(labelled_at__gte=since)
        if until:
            labels = labels.filter(labelled_at__lt=until)
        if params.get("cursor"):
            try:
                at, label_id = cursor_decode(params["cursor"])
                at = parse_utc(at)
                label_id = int(label_id)
            except (MalformedCursor, ValueError, TypeError):
                raise InvalidInput("'cursor' is not a cursor this list gave out.") from None
            labels = labels.filter(Q(labelled_at__lt=at) | Q(labelled_at=at, id__lt=label_id))
        limit = DecisionExportView._limit(params.get("limit"), streaming=False)
        page = list(labels[: limit + 1])
        has_more = len(page) > limit
        page = page[:limit]
        last = page[-1] if page else None
        return Response(
            {
                "results": [after_review_record(label) for label in page],
                "next_cursor": cursor_encode([last.labelled_at.isoformat(), last.pk]) if has_more and last else None,
                "has_more": has_more,
            }
        )
