"""The policies API under hostile input: 4xx JSON errors, never a 500, nothing written."""

from __future__ import annotations

import pytest

from policies.models import Policy, PolicyDraft

pytestmark = pytest.mark.django_db


def policy_body(**overrides):
    body = {"action_pattern": "send_*", "mode": "approve", "change_note": "hostile input test"}
    body.update(overrides)
    return body


def test_draft_whose_rows_are_not_objects_is_a_422_not_a_500(staff_api):
    response = staff_api.post(
        "/api/v1/policies/drafts/", {"name": "0", "rows": [[None, None]], "note": ""}, format="json"
    )

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"]["fields"]["rows[0]"][0]["code"] == "not_an_object"
    assert not PolicyDraft.objects.exists()


def test_simulation_whose_rows_are_not_objects_is_a_422(staff_api):
    response = staff_api.post("/api/v1/policies/simulate/", {"rows": [None, "x"]}, format="json")

    assert response.status_code == 422
    assert set(response.json()["error"]["details"]["fields"]) == {"rows[0]", "rows[1]"}


def test_draft_nested_too_deep_is_refused_and_nothing_is_written(staff_api):
    text = '{"name": "deep", "note": "", "rows": [{"action_pattern": "x", "mode": "auto", "description": ' + (
        "[" * 50_000 + "]" * 50_000 + "}]}"
    )

    response = staff_api.post("/api/v1/policies/drafts/", data=text, content_type="application/json")

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "json_too_deep"
    assert error["details"]["path"].startswith("rows[0].description[0][0]")
    assert not PolicyDraft.objects.exists()


def test_policy_with_nul_in_its_condition_is_refused_and_nothing_is_written(staff_api):
    before = Policy.objects.count()

    response = staff_api.post("/api/v1/policies/", policy_body(condition="params.to == 'a\x00'"), format="json")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_characters"
    assert response.json()["error"]["details"]["path"] == "condition"
    assert Policy.objects.count() == before


def test_policy_with_a_lone_surrogate_in_its_description_is_refused(staff_api):
    text = '{"action_pattern": "x", "mode": "auto", "change_note": "n", "description": "\\ud800"}'

    response = staff_api.post("/api/v1/policies/", data=text, content_type="application/json")

    assert response.status_code == 422
    assert response.json()["error"]["details"]["path"] == "description"


def test_policy_with_infinity_as_its_priority_is_refused(staff_api):
    text = '{"action_pattern": "x", "mode": "auto", "change_note": "n", "priority": Infinity}'

    response = staff_api.post("/api/v1/policies/", data=text, content_type="application/json")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_number"
    assert response.json()["error"]["details"]["path"] == "priority"


def test_draft_with_too_many_rows_is_refused(staff_api, settings):
    settings.COUNTERSIGN_JSON_MAX_KEYS = 10
    rows = [{"action_pattern": f"a{i}", "mode": "auto"} for i in range(11)]

    response = staff_api.post("/api/v1/policies/drafts/", {"name": "wide", "rows": rows}, format="json")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "json_too_large"
    assert response.json()["error"]["details"]["path"] == "rows"
    assert not PolicyDraft.objects.exists()


@pytest.mark.parametrize(
    "path", ["/api/v1/policies/null,null/", "/api/v1/policies/versions/x/", "/api/v1/policies/nope"]
)
def test_a_malformed_policy_path_is_a_json_404_with_debug_on(staff_api, settings, path):
    settings.DEBUG = True

    response = staff_api.get(path)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "not_found"


def test_a_draft_row_with_a_null_condition_publishes_as_no_condition(staff_api):
    row = {"action_pattern": "send_*", "mode": "approve", "condition": None, "description": None}
    saved = staff_api.post("/api/v1/policies/drafts/", {"name": "nulls", "rows": [row]}, format="json")
    assert saved.status_code == 201

    published = staff_api.post(f"/api/v1/policies/drafts/{saved.json()['id']}/publish/", {}, format="json")
    simulated = staff_api.post("/api/v1/policies/simulate/", {"draft_id": saved.json()["id"]}, format="json")

    assert published.status_code == 201
    assert simulated.status_code == 200
    assert list(Policy.objects.values_list("action_pattern", "condition", "description")) == [("send_*", "", "")]


@pytest.mark.parametrize(
    ("field", "value"), [("note", 0), ("name", ["x"]), ("priority", "5"), ("enabled", "yes"), ("mode", 1)]
)
def test_a_value_of_another_json_type_is_refused_not_converted(staff_api, field, value):
    if field in ("note", "name"):
        response = staff_api.post("/api/v1/policies/drafts/", {"name": "d", "rows": [], field: value}, format="json")
    else:
        response = staff_api.post("/api/v1/policies/", policy_body(**{field: value}), format="json")

    assert response.status_code == 422
    assert field in response.json()["error"]["details"]["fields"]
    assert not Policy.objects.exists()
    assert not PolicyDraft.objects.exists()


@pytest.mark.parametrize("limit", ["null", "", "0", "501", "²", "-1"])
def test_a_versions_limit_that_is_not_an_integer_in_range_is_a_422(staff_api, limit):
    response = staff_api.get("/api/v1/policies/versions/", {"limit": limit})

    assert response.status_code == 422
