from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from approvals.models import ActionTypeSchema, Decision, Status
from approvals.params_schema import params_problems, schema_problems
from approvals.selectors import action_type_schemas
from approvals.services import action_request_decide
from core.errors import InvalidInput
from tests.factories import PendingRequestFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/action-types/send_external_email/schema"
EMAIL_SCHEMA = {
    "type": "object",
    "required": ["to", "subject"],
    "properties": {
        "to": {"type": "string", "format": "email"},
        "subject": {"type": "string", "minLength": 1, "maxLength": 80},
        "priority": {"enum": ["low", "normal", "high"]},
        "copies": {"type": "integer", "minimum": 0},
    },
    "additionalProperties": False,
}
ORIGINAL = {"to": "customer@example.org", "subject": "Your refund"}


def put(client, body, url=URL):
    return client.put(url, data=json.dumps(body), content_type="application/json")


@pytest.fixture
def registered(api):
    assert put(api, EMAIL_SCHEMA).status_code == 201


def pending(**kwargs):
    return PendingRequestFactory(params=dict(ORIGINAL), **kwargs)


# --- the API -------------------------------------------------------------------------------


def test_agent_registers_a_schema(api, agent):
    response = put(api, EMAIL_SCHEMA)

    assert response.status_code == 201
    body = response.json()
    assert body["action_type"] == "send_external_email"
    assert body["schema"] == EMAIL_SCHEMA
    assert body["registered_by"] == agent.name
    assert ActionTypeSchema.objects.get(action_type="send_external_email").registered_by == agent


def test_agent_reads_the_schema_back(api, registered):
    response = api.get(URL)

    assert response.status_code == 200
    assert response.json()["schema"] == EMAIL_SCHEMA


def test_putting_again_replaces_it(api, registered):
    replacement = {"type": "object", "properties": {"to": {"type": "string"}}}

    response = put(api, replacement)

    assert response.status_code == 200
    assert api.get(URL).json()["schema"] == replacement
    assert ActionTypeSchema.objects.count() == 1


def test_agent_deletes_the_schema(api, registered):
    assert api.delete(URL).status_code == 204

    response = api.get(URL)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_deleting_a_missing_schema_is_404(api):
    assert api.delete(URL).json()["error"]["code"] == "not_found"


def test_reading_a_missing_schema_is_404(api):
    response = api.get(URL)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_unauthenticated_caller_is_refused(client):
    response = put(client, EMAIL_SCHEMA)

    assert response.status_code == 401
    assert not ActionTypeSchema.objects.exists()


def test_another_agent_reads_but_cannot_replace_or_delete(registered, outsider_api):
    assert outsider_api.get(URL).status_code == 200

    replaced = put(outsider_api, {"type": "object"})
    deleted = outsider_api.delete(URL)

    assert replaced.status_code == 403
    assert replaced.json()["error"]["code"] == "schema_owned_by_another_agent"
    assert deleted.status_code == 403
    assert ActionTypeSchema.objects.get().params_schema == EMAIL_SCHEMA


def test_action_type_outside_the_agents_scope_is_refused(api, agent):
    agent.action_scopes = ["search_*"]
    agent.save()

    response = put(api, EMAIL_SCHEMA)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "out_of_scope"


def test_malformed_action_type_name_is_refused(api):
    response = put(api, EMAIL_SCHEMA, url="/api/v1/action-types/Send%20Email/schema")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_action_type"


@pytest.mark.parametrize(
    ("schema", "path", "fragment"),
    [
        ({"type": "object", "properties": {"to": {"type": "strin"}}}, "/properties/to/type", "strin"),
        ({"type": "object", "required": "to"}, "/required", "not of type 'array'"),
        ({"type": "array"}, "/type", '"type": "object"'),
        ({"properties": {}}, "/type", '"type": "object"'),
        ({"type": "object", "properties": {"to": {"$ref": "https://evil.example/s.json"}}}, "/properties/to/$ref", "#"),
        ({"$schema": "http://json-schema.org/draft-04/schema#", "type": "object"}, "/$schema", "2020-12"),
    ],
)
def test_invalid_schema_is_refused_with_path_and_message(api, schema, path, fragment):
    response = put(api, schema)

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_schema"
    assert error["details"]["path"] == path
    assert fragment in error["details"]["message"]
    assert not ActionTypeSchema.objects.exists()


def test_a_json_array_is_not_a_schema(api):
    response = put(api, [{"type": "object"}])

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_schema"


def test_local_references_are_allowed():
    schema = {
        "type": "object",
        "$defs": {"address": {"type": "string", "format": "email"}},
        "properties": {"to": {"$ref": "#/$defs/address"}},
    }

    assert schema_problems(schema) == []
    assert params_problems(schema, {"to": "not-an-address"}) == [
        {"path": "/to", "message": "'not-an-address' is not a 'email'"}
    ]


def test_openapi_documents_the_schema_endpoint(client):
    import yaml

    schema = yaml.safe_load(client.get("/api/schema/").content)
    operations = schema["paths"]["/api/v1/action-types/{name}/schema"]

    assert set(operations) >= {"get", "put", "delete"}
    assert {"200", "201", "403", "422"} <= set(operations["put"]["responses"])


# --- decisions with edits ------------------------------------------------------------------


def test_valid_edit_is_approved(registered, alice):
    request = pending()

    decision = action_request_decide(
        request_id=request.id,
        reviewer=alice,
        approve=True,
        final_params={"to": "jane@customer.example", "subject": "Your refund", "priority": "high"},
    )

    assert decision.edited is True
    request.refresh_from_db()
    assert request.status == Status.APPROVED
    assert request.final_params["to"] == "jane@customer.example"


def test_invalid_edit_is_refused_with_every_error_listed(registered, alice):
    request = pending()

    with pytest.raises(InvalidInput) as exc:
        action_request_decide(
            request_id=request.id,
            reviewer=alice,
            approve=True,
            final_params={"to": "not an address", "priority": "urgent", "copies": -1, "bcc": "x@example.org"},
        )

    assert exc.value.code == "invalid_params"
    assert exc.value.status == 422
    errors = exc.value.details["errors"]
    assert [e["path"] for e in errors] == ["", "/copies", "/priority", "/subject", "/to"]
    by_path = {e["path"]: e["message"] for e in errors}
    assert "'bcc' was unexpected" in by_path[""]
    assert "minimum of 0" in by_path["/copies"]
    assert by_path["/priority"] == "'urgent' is not one of ['low', 'normal', 'high']"
    assert by_path["/subject"] == "'subject' is required."
    assert "is not a 'email'" in by_path["/to"]
    request.refresh_from_db()
    assert request.status == Status.PENDING
    assert not Decision.objects.exists()


def test_email_format_is_checked(registered, alice):
    request = pending()

    with pytest.raises(InvalidInput) as exc:
        action_request_decide(
            request_id=request.id, reviewer=alice, approve=True, final_params={"to": "jane", "subject": "Hi"}
        )

    assert exc.value.details["errors"] == [{"path": "/to", "message": "'jane' is not a 'email'"}]


def test_required_fields_are_checked(registered, alice):
    request = pending()

    with pytest.raises(InvalidInput) as exc:
        action_request_decide(request_id=request.id, reviewer=alice, approve=True, final_params={"priority": "low"})

    assert exc.value.details["errors"] == [
        {"path": "/subject", "message": "'subject' is required."},
        {"path": "/to", "message": "'to' is required."},
    ]


def test_enums_are_checked(registered, alice):
    request = pending()

    with pytest.raises(InvalidInput) as exc:
        action_request_decide(
            request_id=request.id, reviewer=alice, approve=True, final_params={**ORIGINAL, "priority": "asap"}
        )

    assert exc.value.details["errors"][0]["path"] == "/priority"


def test_unedited_approval_is_not_checked_against_the_schema(registered, alice):
    request = PendingRequestFactory(params={"to": "not an address"})

    decision = action_request_decide(request_id=request.id, reviewer=alice, approve=True, final_params=request.params)

    assert decision.outcome == "approved" and decision.edited is False


def test_without_a_schema_edited_params_must_be_an_object(alice):
    request = pending()

    with pytest.raises(InvalidInput) as exc:
        action_request_decide(request_id=request.id, reviewer=alice, approve=True, final_params=["x"])

    assert exc.value.code == "invalid_params"
    assert exc.value.details["errors"][0]["path"] == ""


def test_without_a_schema_any_object_edit_is_accepted(alice):
    request = pending()

    decision = action_request_decide(request_id=request.id, reviewer=alice, approve=True, final_params={"x": 1})

    assert decision.edited is True


def test_reviewer_endpoint_returns_the_errors_for_the_form(registered, client, alice):
    request = pending()
    client.force_login(alice)

    response = client.post(
        f"/queue/requests/{request.id}/decide",
        data=json.dumps({"decision": "approve", "params": {"to": "nobody", "subject": "Hi"}}),
        content_type="application/json",
    )

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_params"
    assert error["details"]["errors"] == [{"path": "/to", "message": "'nobody' is not a 'email'"}]


def test_schemas_for_many_action_types_come_in_one_query(api):
    for name in ("a_one", "a_two", "a_three"):
        assert put(api, {"type": "object", "title": name}, url=f"/api/v1/action-types/{name}/schema").status_code == 201

    with CaptureQueriesContext(connection) as queries:
        schemas = action_type_schemas(["a_one", "a_two", "a_three", "no_schema"])

    assert len(queries) == 1
    assert {name: s["title"] for name, s in schemas.items()} == {
        "a_one": "a_one",
        "a_two": "a_two",
        "a_three": "a_three",
    }
    assert action_type_schemas([]) == {}
