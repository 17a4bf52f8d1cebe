"""/api/v1/policies/: staff only (session or staff token), same validation as the admin form."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from policies.models import Policy, PolicyVersion
from policies.services import policy_create
from reviewers.services import reviewer_group_ensure
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/policies/"


def body(**overrides):
    data = {"action_pattern": "execute_financial_action", "mode": "approve", "change_note": "Refunds need a human."}
    data.update(overrides)
    return data


def test_create_returns_the_row_with_exactly_the_documented_fields(staff_api):
    Group.objects.create(name="finance")
    reviewer_group_ensure(name="managers")

    response = staff_api.post(
        URL,
        body(
            condition="params.amount > 1000",
            required_approvals=2,
            reviewer_group="finance",
            on_expiry="escalate",
            escalation_group="managers",
        ),
        format="json",
    )

    assert response.status_code == 201
    data = response.json()
    assert set(data) == {
        "id",
        "action_pattern",
        "mode",
        "condition",
        "priority",
        "enabled",
        "required_approvals",
        "reviewer_group",
        "pending_ttl_seconds",
        "approval_ttl_seconds",
        "on_expiry",
        "escalation_group",
        "description",
        "collapse_duplicates",
        "sample_rate",
        "created_at",
        "updated_at",
    }
    assert (data["condition"], data["required_approvals"], data["reviewer_group"]) == (
        "params.amount > 1000",
        2,
        "finance",
    )
    assert PolicyVersion.objects.get().note == "Refunds need a human."


def test_condition_that_does_not_compile_is_a_422_with_the_compiler_message(staff_api):
    response = staff_api.post(URL, body(condition="params.amount >"), format="json")

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_condition"
    assert "Syntax error" in error["details"]["fields"]["condition"][0]
    assert not Policy.objects.exists()


def test_write_without_change_note_is_refused(staff_api):
    response = staff_api.post(URL, {"action_pattern": "x", "mode": "auto"}, format="json")

    assert response.status_code == 422
    assert "change_note" in response.json()["error"]["details"]["fields"]


def test_unknown_reviewer_group_is_refused(staff_api):
    response = staff_api.post(URL, body(reviewer_group="nobody"), format="json")

    assert response.status_code == 422
    assert "reviewer_group" in response.json()["error"]["details"]["fields"]


def test_bad_pattern_is_refused_like_the_admin_form(staff_api):
    response = staff_api.post(URL, body(action_pattern="Send Email"), format="json")

    assert response.status_code == 422
    assert response.json()["error"]["details"]["fields"]["action_pattern"]


def test_patch_changes_one_field_and_records_a_diff(staff_api, admin_user):
    policy = policy_create(actor=admin_user, data={"action_pattern": "x", "mode": "auto"}, change_note="v1")

    response = staff_api.patch(f"{URL}{policy.id}/", {"mode": "block", "change_note": "Stop x"}, format="json")

    assert response.status_code == 200
    assert response.json()["mode"] == "block"
    assert PolicyVersion.objects.get(number=2).diff["changed"][0]["fields"] == {"mode": {"from": "auto", "to": "block"}}


def test_patch_without_change_note_is_refused(staff_api, admin_user):
    policy = policy_create(actor=admin_user, data={"action_pattern": "x", "mode": "auto"}, change_note="v1")

    response = staff_api.patch(f"{URL}{policy.id}/", {"mode": "block"}, format="json")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "change_note_required"
    assert Policy.objects.get().mode == "auto"


def test_delete_needs_a_note_and_records_it(staff_api, admin_user):
    policy = policy_create(actor=admin_user, data={"action_pattern": "x", "mode": "auto"}, change_note="v1")

    assert staff_api.delete(f"{URL}{policy.id}/").status_code == 422
    response = staff_api.delete(f"{URL}{policy.id}/", {"change_note": "x is gone"}, format="json")

    assert response.status_code == 204
    assert not Policy.objects.exists()
    assert PolicyVersion.objects.get(number=2).note == "x is gone"


def test_list_and_missing_policy(staff_api, admin_user):
    policy_create(actor=admin_user, data={"action_pattern": "x", "mode": "auto"}, change_note="v1")

    assert [p["action_pattern"] for p in staff_api.get(URL).json()] == ["x"]
    assert staff_api.get(f"{URL}999/").json()["error"]["code"] == "not_found"


def test_versions_and_rollback(staff_api, admin_user):
    policy = policy_create(actor=admin_user, data={"action_pattern": "x", "mode": "auto"}, change_note="v1")
    staff_api.patch(f"{URL}{policy.id}/", {"mode": "block", "change_note": "v2"}, format="json")

    versions = staff_api.get(f"{URL}versions/").json()
    old = staff_api.get(f"{URL}versions/1/").json()
    rolled = staff_api.post(f"{URL}versions/1/rollback/", {"change_note": "undo"}, format="json")

    assert [v["number"] for v in versions] == [2, 1]
    assert versions[0]["created_by"] == "admin"
    assert old["snapshot"][0]["mode"] == "auto"
    assert rolled.status_code == 201
    assert rolled.json()["number"] == 3
    assert Policy.objects.get().mode == "auto"


def test_staff_token_authenticates(admin_user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=admin_user).key}")

    assert client.post(URL, body(), format="json").status_code == 201


def test_anonymous_is_401():
    response = APIClient().get(URL)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_agent_key_cannot_use_the_policy_api(api):
    assert api.get(URL).status_code == 401


def test_reviewer_who_is_not_staff_is_403(alice):
    client = APIClient()
    client.force_login(alice)

    response = client.get(URL)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_staff_with_only_view_permission_can_read_but_not_write():
    viewer = UserFactory(username="auditor", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_policy"))
    client = APIClient()
    client.force_login(viewer)

    assert client.get(URL).status_code == 200
    assert client.post(URL, body(), format="json").status_code == 403


def test_draft_is_saved_then_published_atomically(staff_api, admin_user):
    policy_create(actor=admin_user, data={"action_pattern": "x", "mode": "auto"}, change_note="v1")
    rows = [{"action_pattern": "y", "mode": "block"}, {"action_pattern": "z_*", "mode": "log"}]

    saved = staff_api.post(f"{URL}drafts/", {"name": "swap", "rows": rows}, format="json")
    assert saved.status_code == 201
    assert list(Policy.objects.values_list("action_pattern", flat=True)) == ["x"]

    published = staff_api.post(
        f"{URL}drafts/{saved.json()['id']}/publish/", {"change_note": "swap x for y"}, format="json"
    )
    again = staff_api.post(f"{URL}drafts/{saved.json()['id']}/publish/", {"change_note": "again"}, format="json")

    assert published.status_code == 201
    assert published.json()["note"] == "swap x for y"
    assert sorted(Policy.objects.values_list("action_pattern", flat=True)) == ["y", "z_*"]
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already_published"


def test_draft_with_a_bad_condition_is_refused(staff_api):
    response = staff_api.post(
        f"{URL}drafts/",
        {"name": "bad", "rows": [{"action_pattern": "y", "mode": "auto", "condition": "1 +"}]},
        format="json",
    )

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_condition"


def test_publishing_an_invalid_table_changes_nothing(admin_user):
    from core.errors import InvalidInput
    from policies.services import policy_table_replace

    policy_create(actor=admin_user, data={"action_pattern": "x", "mode": "auto"}, change_note="v1")

    with pytest.raises(InvalidInput):
        policy_table_replace(
            actor=admin_user,
            rows=[{"action_pattern": "fine", "mode": "auto"}, {"action_pattern": "BAD PATTERN", "mode": "auto"}],
            note="half-broken",
        )

    assert list(Policy.objects.values_list("action_pattern", flat=True)) == ["x"]
    assert PolicyVersion.objects.count() == 1
