"""The agent API refuses hostile JSON with a 4xx JSON error naming the value, and writes nothing."""

from __future__ import annotations

import json
import uuid

import pytest

from approvals.models import ActionRequest
from tests.helpers import submission_body

pytestmark = pytest.mark.django_db


def post_raw(api, text: str, path: str = "/api/v1/actions/"):
    return api.post(path, data=text.encode(), content_type="application/json")


def body_with_params_text(params_text: str) -> str:
    """A valid submission whose params are the given JSON text, spliced in as is."""
    body = json.dumps(submission_body(params={"x": 1}))
    return body.replace('{"x": 1}', params_text, 1)


def assert_refused(response, *, status: int, code: str, path: str | None = None) -> dict:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code
    if path is not None:
        assert error["details"]["path"] == path
    assert ActionRequest.objects.count() == 0
    return error


def test_params_nested_50000_arrays_deep_are_refused_as_too_deep_and_nothing_is_written(api, default_policies):
    response = post_raw(api, body_with_params_text("[" * 50_000 + "]" * 50_000))

    error = assert_refused(response, status=422, code="json_too_deep")
    assert error["details"]["path"] == "params" + "[0]" * 63
    assert error["details"]["limit"] == 64


def test_params_40000_objects_deep_are_refused_as_too_deep(api, default_policies):
    response = post_raw(api, body_with_params_text('{"a":' * 40_000 + "1" + "}" * 40_000))

    error = assert_refused(response, status=422, code="json_too_deep")
    assert error["details"]["path"] == "params" + ".a" * 63


def test_params_at_the_depth_limit_are_accepted_and_one_level_more_is_refused(api, default_policies):
    # The body is level 1, params level 2 and its array level 3: 62 arrays reach level 64, the limit.
    ok = post_raw(api, body_with_params_text('{"a":' + "[" * 62 + "]" * 62 + "}"))
    assert ok.status_code == 201, ok.content[:300]
    ActionRequest.objects.all().delete()

    response = post_raw(api, body_with_params_text('{"a":' + "[" * 63 + "]" * 63 + "}"))

    assert_refused(response, status=422, code="json_too_deep", path="params.a" + "[0]" * 62)


def test_nul_in_a_params_key_is_refused_on_every_database(api, default_policies):
    response = post_raw(api, body_with_params_text('{"to": "c@example.org", "bad\\u0000key": 1}'))

    assert_refused(response, status=422, code="invalid_characters", path='params["bad\\u0000key"]')


def test_nul_in_a_params_value_is_refused(api, default_policies):
    response = post_raw(api, body_with_params_text('{"to": ["ok", "c@example.org\\u0000"]}'))

    assert_refused(response, status=422, code="invalid_characters", path="params.to[1]")


def test_nul_in_the_summary_is_refused(api, default_policies):
    response = api.post("/api/v1/actions/", submission_body(summary="hello\x00world"), format="json")

    assert_refused(response, status=422, code="invalid_characters", path="summary")


def test_a_lone_surrogate_escape_in_the_json_text_is_refused(api, default_policies):
    response = post_raw(api, body_with_params_text('{"subject": "\\ud800"}'))

    assert_refused(response, status=422, code="invalid_characters", path="params.subject")


def test_a_lone_low_surrogate_in_a_context_key_is_refused(api, default_policies):
    body = json.dumps(submission_body(context={"x": 1})).replace('{"x": 1}', '{"\\udc00": 1}')

    assert_refused(post_raw(api, body), status=422, code="invalid_characters", path='context["\\udc00"]')


def test_a_surrogate_pair_is_one_character_and_accepted(api, default_policies):
    response = post_raw(api, body_with_params_text('{"subject": "\\ud83d\\ude00"}'))

    assert response.status_code == 201
    assert ActionRequest.objects.get().params == {"subject": "\U0001f600"}


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"])
def test_non_finite_numbers_are_refused(api, default_policies, number):
    response = post_raw(api, body_with_params_text(f'{{"amount": [1, {number}]}}'))

    assert_refused(response, status=422, code="invalid_number", path="params.amount[1]")


def test_nan_as_the_confidence_is_refused(api, default_policies):
    body = json.dumps(submission_body()).replace('"confidence": 0.82', '"confidence": NaN')

    assert_refused(post_raw(api, body), status=422, code="invalid_number", path="confidence")


def test_an_integer_too_long_to_convert_is_refused(api, default_policies):
    response = post_raw(api, body_with_params_text('{"n": ' + "9" * 5000 + "}"))

    assert_refused(response, status=422, code="invalid_number", path="params.n")


def test_too_many_keys_in_context_are_refused(api, default_policies, settings):
    settings.COUNTERSIGN_JSON_MAX_KEYS = 20
    context = {f"k{i}": i for i in range(21)}

    response = api.post("/api/v1/actions/", submission_body(context=context), format="json")

    error = assert_refused(response, status=422, code="json_too_large", path="context")
    assert error["details"]["limit"] == 20


def test_too_many_items_in_a_params_array_are_refused(api, default_policies):
    response = api.post("/api/v1/actions/", submission_body(params={"to": list(range(1001))}), format="json")

    assert_refused(response, status=422, code="json_too_large", path="params.to")


def test_a_too_long_string_in_params_is_refused(api, default_policies):
    response = api.post("/api/v1/actions/", submission_body(params={"body": "x" * 32_769}), format="json")

    error = assert_refused(response, status=422, code="json_too_large", path="params.body")
    assert error["details"]["limit"] == 32_768


def test_a_too_long_string_in_evidence_is_refused_at_the_configured_limit(api, default_policies, settings):
    settings.COUNTERSIGN_JSON_MAX_STRING = 300
    evidence = [{"title": "Ticket", "excerpt": "ok"}, {"title": "Ticket", "excerpt": "x" * 301}]

    response = api.post("/api/v1/actions/", submission_body(evidence=evidence), format="json")

    assert_refused(response, status=422, code="json_too_large", path="evidence[1].excerpt")


def test_a_too_long_key_is_refused(api, default_policies):
    response = api.post("/api/v1/actions/", submission_body(params={"k" * 32_769: 1}), format="json")

    error = assert_refused(response, status=422, code="json_too_large")
    assert error["details"]["path"].startswith('params["kkkk')


def test_the_execution_report_is_parsed_within_the_same_limits(api):
    response = post_raw(
        api, '{"status": "succeeded", "result": {"x": NaN}}', path=f"/api/v1/actions/{uuid.uuid4()}/execution"
    )

    assert_refused(response, status=422, code="invalid_number", path="result.x")


def test_text_that_is_not_json_is_still_a_400_malformed_json(api, default_policies):
    assert_refused(post_raw(api, '{"params": '), status=400, code="malformed_json")


def test_invalid_utf8_is_a_400_malformed_json(api, default_policies):
    response = api.post("/api/v1/actions/", data=b'{"summary": "\xed\xa0\x80"}', content_type="application/json")

    assert_refused(response, status=400, code="malformed_json")
