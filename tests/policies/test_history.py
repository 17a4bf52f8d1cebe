"""Every change to the table is kept: who, when, the diff, a note; any version can be restored."""

from __future__ import annotations

import pytest

from core.errors import InvalidInput
from policies.models import Policy, PolicyVersion
from policies.selectors import policy_table_current
from policies.services import (
    policy_create,
    policy_delete,
    policy_draft_publish,
    policy_draft_save,
    policy_update,
    policy_version_rollback,
)

pytestmark = pytest.mark.django_db


def test_create_records_who_why_and_an_added_row(admin_user):
    policy = policy_create(
        actor=admin_user, data={"action_pattern": "refund", "mode": "approve"}, change_note="Refunds need a human."
    )

    version = PolicyVersion.objects.get()
    assert (version.created_by, version.note) == (admin_user, "Refunds need a human.")
    assert [row["id"] for row in version.diff["added"]] == [policy.id]
    assert version.created_at is not None


def test_update_records_a_field_by_field_diff(admin_user):
    policy = policy_create(actor=admin_user, data={"action_pattern": "refund", "mode": "approve"}, change_note="a")

    policy_update(
        actor=admin_user, policy_id=policy.id, data={"condition": "params.amount > 1000"}, change_note="Only big ones"
    )

    diff = PolicyVersion.objects.get(number=2).diff
    assert diff["changed"] == [
        {
            "id": policy.id,
            "action_pattern": "refund",
            "fields": {"condition": {"from": "", "to": "params.amount > 1000"}},
        }
    ]


def test_every_write_needs_a_change_note(admin_user):
    with pytest.raises(InvalidInput) as caught:
        policy_create(actor=admin_user, data={"action_pattern": "refund", "mode": "approve"}, change_note="  ")

    assert caught.value.code == "change_note_required"
    assert not Policy.objects.exists()


def test_condition_that_does_not_compile_is_refused_on_save(admin_user):
    with pytest.raises(InvalidInput) as caught:
        policy_create(
            actor=admin_user,
            data={"action_pattern": "refund", "mode": "auto", "condition": "params.amount >"},
            change_note="x",
        )

    assert caught.value.code == "invalid_condition"
    assert "Syntax error" in caught.value.details["fields"]["condition"][0]
    assert not PolicyVersion.objects.exists()


def test_rollback_restores_an_old_table_and_keeps_history(admin_user):
    first = policy_create(actor=admin_user, data={"action_pattern": "refund", "mode": "approve"}, change_note="v1")
    policy_update(actor=admin_user, policy_id=first.id, data={"mode": "auto"}, change_note="v2: trust it")
    policy_create(actor=admin_user, data={"action_pattern": "wire", "mode": "block"}, change_note="v3")
    assert policy_table_current().candidates("refund")[0].mode == "auto"

    version = policy_version_rollback(actor=admin_user, number=1, note="auto refunds were a mistake")

    assert version.number == 4
    assert list(Policy.objects.values_list("id", "action_pattern", "mode")) == [(first.id, "refund", "approve")]
    assert policy_table_current().candidates("refund")[0].mode == "approve"
    assert PolicyVersion.objects.count() == 4
    assert [row["action_pattern"] for row in version.diff["removed"]] == ["wire"]


def test_rollback_recreates_a_deleted_row(admin_user):
    policy = policy_create(actor=admin_user, data={"action_pattern": "refund", "mode": "approve"}, change_note="v1")
    policy_delete(actor=admin_user, policy_id=policy.id, change_note="v2")

    policy_version_rollback(actor=admin_user, number=1)

    assert list(Policy.objects.values_list("action_pattern", "mode")) == [("refund", "approve")]
    assert PolicyVersion.objects.get(number=3).note == "Rolled back to version 1."


def test_rollback_to_a_missing_version_is_not_found(admin_user):
    from core.errors import NotFound

    with pytest.raises(NotFound):
        policy_version_rollback(actor=admin_user, number=99)


def test_draft_publish_replaces_the_table_in_one_version(admin_user):
    keep = policy_create(actor=admin_user, data={"action_pattern": "refund", "mode": "approve"}, change_note="v1")
    policy_create(actor=admin_user, data={"action_pattern": "wire", "mode": "block"}, change_note="v2")
    draft = policy_draft_save(
        actor=admin_user,
        name="loosen refunds",
        rows=[
            {"id": keep.id, "action_pattern": "refund", "mode": "auto", "condition": "params.amount < 50"},
            {"action_pattern": "search_*", "mode": "auto"},
        ],
    )
    assert Policy.objects.count() == 2  # a draft changes nothing until published

    version = policy_draft_publish(actor=admin_user, draft_id=draft.id, note="Small refunds run unattended.")

    assert version.number == 3
    assert sorted(Policy.objects.values_list("action_pattern", "mode")) == [("refund", "auto"), ("search_*", "auto")]
    assert Policy.objects.get(action_pattern="refund").id == keep.id


def test_invalid_draft_is_refused_before_anything_changes(admin_user):
    with pytest.raises(InvalidInput) as caught:
        policy_draft_save(
            actor=admin_user,
            name="broken",
            rows=[
                {"action_pattern": "ok", "mode": "auto"},
                {"action_pattern": "x", "mode": "auto", "condition": "1 +"},
            ],
        )

    assert caught.value.code == "invalid_condition"
    assert "rows[1].condition" in caught.value.details["fields"]


def test_admin_form_shows_the_compiler_error_next_to_the_condition(admin_user, client):
    client.force_login(admin_user)

    response = client.post(
        "/admin/policies/policy/add/",
        {
            "action_pattern": "refund",
            "mode": "approve",
            "condition": "params.amount >",
            "priority": 0,
            "pending_ttl_seconds": 60,
            "approval_ttl_seconds": 30,
            "required_approvals": 1,
            "on_expiry": "reject",
            "enabled": "on",
            "change_note": "try",
        },
    )

    assert response.status_code == 200
    assert "Syntax error" in str(response.context["adminform"].form.errors["condition"])
    assert not Policy.objects.exists()


def test_admin_rollback_action(admin_user, client):
    policy_create(actor=admin_user, data={"action_pattern": "refund", "mode": "approve"}, change_note="v1")
    policy_create(actor=admin_user, data={"action_pattern": "wire", "mode": "block"}, change_note="v2")
    client.force_login(admin_user)
    target = PolicyVersion.objects.get(number=1)

    response = client.post(
        "/admin/policies/policyversion/",
        {"action": "roll_back_to_this_version", "_selected_action": [target.pk]},
    )

    assert response.status_code == 302
    assert list(Policy.objects.values_list("action_pattern", flat=True)) == ["refund"]
    assert PolicyVersion.objects.get(number=3).created_by == admin_user
