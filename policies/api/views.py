"""The policy table's admin API: one APIView per operation, staff only, every write through a service."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import InvalidInput, NotFound
from core.serializers import error_doc
from policies.models import Policy, PolicyVersion
from policies.selectors import policy_table_from_rows
from policies.services import (
    policy_as_row,
    policy_create,
    policy_delete,
    policy_draft_get,
    policy_draft_publish,
    policy_draft_save,
    policy_rows_validate,
    policy_update,
    policy_version_get,
    policy_version_rollback,
)
from policies.simulation import policy_table_simulate

from .authentication import STAFF_AUTHENTICATION, IsPolicyAdmin
from .serializers import (
    ChangeNoteSerializer,
    DraftInputSerializer,
    DraftOutputSerializer,
    PolicyOutputSerializer,
    PolicyVersionOutputSerializer,
    PolicyWriteSerializer,
    RollbackInputSerializer,
    SimulateInputSerializer,
    SimulationOutputSerializer,
)

LIST_LIMIT = 1000
VERSIONS_MAX = 500


AUTH = {
    401: error_doc("No staff session and no valid `Authorization: Token <staff token>` (`not_authenticated`)."),
    403: error_doc("Not staff, or missing the view/change permission on policies (`permission_denied`)."),
}
WRITE_ERRORS = {
    400: error_doc("The body is not valid JSON (`malformed_json`)."),
    415: error_doc("Body is not JSON (`unsupported_media_type`)."),
    422: error_doc(
        "Invalid fields (`validation_error`, `unknown_field`), a CEL condition that does not compile "
        "(`invalid_condition`, the compiler's message in `details.fields.condition`), a group name that does "
        "not exist (`unknown_group`), `on_expiry: escalate` without an `escalation_group` "
        "(`escalation_group_required`), an escalation group without the review permission "
        "(`group_cannot_review`), or no change note (`change_note_required`). `details.codes` gives each "
        "field's codes."
    ),
}
NOT_FOUND = {404: error_doc("No such policy (`not_found`).")}


def _policy_out(policy: Policy) -> dict[str, Any]:
    row = policy_as_row(policy)
    row.pop("risk", None)
    row["created_at"] = policy.created_at
    row["updated_at"] = policy.updated_at
    return PolicyOutputSerializer(row).data


def _version_out(version: PolicyVersion, *, with_snapshot: bool) -> dict[str, Any]:
    data = {
        "number": version.number,
        "created_at": version.created_at,
        "created_by": version.created_by.get_username() if version.created_by else None,
        "note": version.note,
        "diff": version.diff,
    }
    if with_snapshot:
        data["snapshot"] = version.snapshot
    return PolicyVersionOutputSerializer(data).data


class StaffAPIView(APIView):
    authentication_classes = STAFF_AUTHENTICATION
    permission_classes = [IsPolicyAdmin]


class PolicyListCreateView(StaffAPIView):
    @extend_schema(
        operation_id="policies_list",
        summary="The policy table, in evaluation order",
        responses={200: PolicyOutputSerializer(many=True), **AUTH},
    )
    def get(self, request):
        policies = Policy.objects.select_related("reviewer_group", "escalation_group")
        return Response([_policy_out(p) for p in policies.order_by("-priority", "id")[:LIST_LIMIT]])

    @extend_schema(
        operation_id="policies_create",
        summary="Add a policy",
        request=PolicyWriteSerializer,
        responses={201: PolicyOutputSerializer, **WRITE_ERRORS, **AUTH},
    )
    def post(self, request):
        serializer = PolicyWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        note = data.pop("change_note")
        policy = policy_create(actor=request.user, data=data, change_note=note)
        return Response(_policy_out(policy), status=201)


class PolicyDetailView(StaffAPIView):
    def _get(self, policy_id: int) -> Policy:
        policy = Policy.objects.select_related("reviewer_group", "escalation_group").filter(pk=policy_id).first()
        if policy is None:
            raise NotFound(f"No policy {policy_id}.")
        return policy

    @extend_schema(
        operation_id="policies_retrieve",
        summary="Read a policy",
        responses={200: PolicyOutputSerializer, **AUTH, **NOT_FOUND},
    )
    def get(self, request, policy_id: int):
        return Response(_policy_out(self._get(policy_id)))

    @extend_schema(
        operation_id="policies_partial_update",
        summary="Change some fields of a policy",
        request=PolicyWriteSerializer(partial=True),
        responses={200: PolicyOutputSerializer, **WRITE_ERRORS, **AUTH, **NOT_FOUND},
    )
    def patch(self, request, policy_id: int):
        return self._update(request, policy_id, partial=True)

    @extend_schema(
        operation_id="policies_update",
        summary="Replace a policy",
        request=PolicyWriteSerializer,
        responses={200: PolicyOutputSerializer, **WRITE_ERRORS, **AUTH, **NOT_FOUND},
    )
    def put(self, request, policy_id: int):
        return self._update(request, policy_id, partial=False)

    def _update(self, request, policy_id: int, *, partial: bool):
        serializer = PolicyWriteSerializer(data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        note = data.pop("change_note", "")
        policy = policy_update(actor=request.user, policy_id=policy_id, data=data, change_note=note)
        return Response(_policy_out(self._get(policy.id)))

    @extend_schema(
        operation_id="policies_destroy",
        summary="Delete a policy",
        request=ChangeNoteSerializer,
        parameters=[OpenApiParameter("change_note", str, description="Alternative to the JSON body.")],
        responses={204: None, **WRITE_ERRORS, **AUTH, **NOT_FOUND},
    )
    def delete(self, request, policy_id: int):
        note = request.query_params.get("change_note") or ""
        if not note and request.data:
            serializer = ChangeNoteSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            note = serializer.validated_data["change_note"]
        policy_delete(actor=request.user, policy_id=policy_id, change_note=note)
        return Response(status=204)


class PolicyVersionListView(StaffAPIView):
    @extend_schema(
        operation_id="policies_versions_list",
        summary="The history of the table: who, when, why, the diff",
        parameters=[
            OpenApiParameter("limit", int, description=f"At most this many, newest first (1..{VERSIONS_MAX})."),
        ],
        responses={
            200: PolicyVersionOutputSerializer(many=True),
            **AUTH,
            422: error_doc(f"`limit` is not an integer from 1 to {VERSIONS_MAX} (`validation_error`)."),
        },
    )
    def get(self, request):
        raw = request.query_params.get("limit", "100")
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= VERSIONS_MAX:
            raise InvalidInput(f"'limit' must be an integer from 1 to {VERSIONS_MAX}.")
        limit = int(raw)
        versions = PolicyVersion.objects.select_related("created_by").order_by("-number")[:limit]
        return Response([_version_out(v, with_snapshot=False) for v in versions])


class PolicyVersionDetailView(StaffAPIView):
    @extend_schema(
        operation_id="policies_versions_retrieve",
        summary="One past version, with the whole table as it was",
        responses={200: PolicyVersionOutputSerializer, **AUTH, 404: error_doc("No such version (`not_found`).")},
    )
    def get(self, request, number: int):
        return Response(_version_out(policy_version_get(number=number), with_snapshot=True))


class PolicyVersionRollbackView(StaffAPIView):
    @extend_schema(
        operation_id="policies_versions_rollback",
        summary="Make the table what it was at this version (recorded as a new version)",
        request=RollbackInputSerializer,
        responses={
            201: PolicyVersionOutputSerializer,
            **WRITE_ERRORS,
            **AUTH,
            404: error_doc("No such version (`not_found`)."),
        },
    )
    def post(self, request, number: int):
        serializer = RollbackInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        version = policy_version_rollback(
            actor=request.user, number=number, note=serializer.validated_data["change_note"]
        )
        return Response(_version_out(version, with_snapshot=False), status=201)


class PolicySimulateView(StaffAPIView):
    @extend_schema(
        operation_id="policies_simulate",
        summary="Replay recent real submissions against a draft table",
        description=(
            "Send the whole draft table as `rows` (or a saved `draft_id`) and a window: `days` (default 7) "
            "or `limit` (the last N requests). Nothing is written. Per action type: how many would change "
            "mode, and how many previously rejected by a human would now run unattended."
        ),
        request=SimulateInputSerializer,
        responses={
            200: SimulationOutputSerializer,
            **WRITE_ERRORS,
            **AUTH,
            404: error_doc("No such draft (`not_found`)."),
        },
    )
    def post(self, request):
        serializer = SimulateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        rows = data["rows"] if "rows" in data else policy_draft_get(draft_id=data["draft_id"]).rows
        policy_rows_validate([{k: v for k, v in r.items() if k != "id"} if isinstance(r, dict) else r for r in rows])
        report = policy_table_simulate(
            table=policy_table_from_rows(rows), days=data.get("days"), limit=data.get("limit")
        )
        return Response(SimulationOutputSerializer(report.as_dict()).data)


def _draft_out(draft) -> dict[str, Any]:
    return DraftOutputSerializer(draft).data


class PolicyDraftCreateView(StaffAPIView):
    @extend_schema(
        operation_id="policies_drafts_create",
        summary="Save a proposed table as a draft (validated now; changes nothing live)",
        request=DraftInputSerializer,
        responses={201: DraftOutputSerializer, **WRITE_ERRORS, **AUTH},
    )
    def post(self, request):
        serializer = DraftInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        draft = policy_draft_save(actor=request.user, name=data["name"], rows=data["rows"], note=data["note"])
        return Response(_draft_out(draft), status=201)


class PolicyDraftPublishView(StaffAPIView):
    @extend_schema(
        operation_id="policies_drafts_publish",
        summary="Publish a draft: the whole table changes in one transaction",
        request=RollbackInputSerializer,
        responses={
            201: PolicyVersionOutputSerializer,
            **WRITE_ERRORS,
            **AUTH,
            404: error_doc("No such draft (`not_found`)."),
            409: error_doc("This draft was already published (`already_published`)."),
        },
    )
    def post(self, request, draft_id: int):
        serializer = RollbackInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        version = policy_draft_publish(
            actor=request.user, draft_id=draft_id, note=serializer.validated_data["change_note"]
        )
        return Response(_version_out(version, with_snapshot=False), status=201)
