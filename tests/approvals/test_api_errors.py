from __future__ import annotations

import json
from datetime import timedelta

import pytest
import time_machine
from django.test import override_settings
from django.utils import timezone

from approvals.models import ActionRequest, AuditEvent
from tests.helpers import submission_body

pytestmark = pytest.mark.django_db

URL = "/api/v1/actions/"


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert isinstance(error["details"], dict)
    return error


def assert_nothing_written():
    assert ActionRequest.objects.count() == 0
    assert AuditEvent.objects.count() == 0


def test_malformed_json_is_400(api, default_policies):
    response = api.post(URL, data="{not json", content_type="application/json")

    assert_error(response, 400, "malformed_json")
    assert_nothing_written()


def test_non_json_content_type_is_415(api, default_policies):
    response = api.post(URL, data="action_type=x", content_type="application/x-www-form-urlencoded")

    assert_error(response, 415, "unsupported_media_type")
    assert_nothing_written()


@pytest.mark.parametrize("missing", ["action_type", "params", "summary"])
def test_missing_required_field_is_422_naming_it(api, default_policies, missing):
    body = submission_body()
    del body[missing]

    error = assert_error(api.post(URL, data=json.dumps(body), content_type="application/json"), 422, "validation_error")
    assert error["details"]["fields"][missing][0]["code"] == "required"
    assert_nothing_written()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("params", ["not", "an", "object"]),
        ("params", "a string"),
        ("summary", 42),
        ("confidence", "0.9"),
        ("confidence", True),
        ("confidence", 1.5),
        ("context", "trace"),
        ("evidence", {"title": "not a list"}),
        ("action_type", "Send Email!"),
        ("action_type", 7),
    ],
)
def test_wrong_type_is_422_naming_the_field(api, default_policies, field, value):
    body = submission_body(**{field: value})

    error = assert_error(api.post(URL, data=json.dumps(body), content_type="application/json"), 422, "validation_error")
    assert field in error["details"]["fields"]
    assert_nothing_written()


def test_unknown_field_is_refused(api, default_policies):
    body = submission_body(priority="urgent")

    error = assert_error(api.post(URL, data=json.dumps(body), content_type="application/json"), 422, "unknown_field")
    assert "priority" in error["details"]["fields"]
    assert_nothing_written()


def test_unknown_field_inside_evidence_is_refused(api, default_policies):
    body = submission_body(evidence=[{"title": "t", "score": 3}])

    error = assert_error(api.post(URL, data=json.dumps(body), content_type="application/json"), 422, "unknown_field")
    assert "evidence[0].score" in error["details"]["fields"]


@override_settings(COUNTERSIGN_MAX_BODY_BYTES=2048)
def test_oversized_body_is_413(api, default_policies):
    body = submission_body(params={"blob": "x" * 5000})

    error = assert_error(
        api.post(URL, data=json.dumps(body), content_type="application/json"), 413, "payload_too_large"
    )
    assert error["details"]["limit_bytes"] == 2048
    assert_nothing_written()


def test_missing_api_key_is_401(client, default_policies):
    response = client.post(URL, data=json.dumps(submission_body()), content_type="application/json")

    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_wrong_api_key_is_401(client, default_policies):
    response = client.post(
        URL, data=json.dumps(submission_body()), content_type="application/json", HTTP_AUTHORIZATION="Bearer cs_nope"
    )

    assert_error(response, 401, "not_authenticated")


def test_revoked_key_is_401(api, agent, default_policies):
    agent.keys.update(revoked_at="2026-01-01T00:00:00Z")

    assert_error(
        api.post(URL, data=json.dumps(submission_body()), content_type="application/json"), 401, "not_authenticated"
    )


def test_a_disabled_agents_key_is_401(api, agent, default_policies):
    agent.is_active = False
    agent.save(update_fields=["is_active"])

    assert_error(
        api.post(URL, data=json.dumps(submission_body()), content_type="application/json"), 401, "not_authenticated"
    )


def test_a_key_records_its_use_at_most_once_a_minute(api, agent, default_policies):
    key = agent.keys.get()
    assert key.last_used_at is None

    def submit():
        body = json.dumps(submission_body(action_type="search_web"))
        assert api.post(URL, data=body, content_type="application/json").status_code == 201

    submit()
    key.refresh_from_db()
    first_use = key.last_used_at
    assert first_use is not None
    submit()
    key.refresh_from_db()
    assert key.last_used_at == first_use
    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        submit()
    key.refresh_from_db()
    assert key.last_used_at > first_use


def test_the_keys_own_scope_narrows_the_agents(api, agent, default_policies):
    agent.keys.update(action_scopes=["search_*"])

    allowed = api.post(URL, data=json.dumps(submission_body(action_type="search_web")), content_type="application/json")
    outside = api.post(URL, data=json.dumps(submission_body()), content_type="application/json")

    assert allowed.status_code == 201, allowed.content
    assert allowed.json()["status"] == "allowed"
    assert outside.status_code == 201, outside.content
    assert outside.json()["status"] == "blocked"


def test_private_callback_url_is_refused_when_not_allowed(api, default_policies, settings):
    settings.COUNTERSIGN_WEBHOOK_ALLOW_PRIVATE = False
    body = submission_body(callback_url="http://127.0.0.1:9/hook")

    error = assert_error(api.post(URL, data=json.dumps(body), content_type="application/json"), 422, "validation_error")
    assert error["details"]["fields"]["callback_url"][0]["code"] == "callback_url_not_allowed"


def test_unknown_api_path_is_json_404(api):
    assert_error(api.get("/api/v1/nothing-here/"), 404, "not_found")


def test_overlong_idempotency_key_is_422_and_writes_nothing(api, default_policies):
    response = api.post(
        URL, data=json.dumps(submission_body()), content_type="application/json", HTTP_IDEMPOTENCY_KEY="k" * 256
    )

    assert_error(response, 422, "invalid_idempotency_key")
    assert_nothing_written()
