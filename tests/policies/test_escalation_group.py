"""The escalation group through the policies API, YAML import and the admin form; import matching by natural key."""

from __future__ import annotations

from io import StringIO

import pytest
import yaml
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command

from policies.admin import PolicyAdminForm
from policies.models import Policy, PolicyVersion
from policies.services import policy_create
from reviewers.services import reviewer_group_ensure

pytestmark = pytest.mark.django_db
URL = "/api/v1/policies/"


@pytest.fixture
def managers():
    return reviewer_group_ensure(name="managers")


def body(**overrides):
    data = {"action_pattern": "wire_money", "mode": "approve", "change_note": "Escalate stale wires."}
    data.update(overrides)
    return data


def import_yaml(tmp_path, rows, *args):
    path = tmp_path / "policies.yaml"
    path.write_text(yaml.safe_dump({"policies": rows}, sort_keys=False))
    out = StringIO()
    call_command("import_policies", str(path), *args, stdout=out)
    return out.getvalue()


# --- API ----------------------------------------------------------------------------------------


def test_api_creates_and_reads_back_the_escalation_group(staff_api, managers):
    response = staff_api.post(URL, body(on_expiry="escalate", escalation_group="managers"), format="json")

    assert response.status_code == 201
    assert response.json()["escalation_group"] == "managers"
    assert Policy.objects.get().escalation_group == managers
    assert staff_api.get(f"{URL}{response.json()['id']}/").json()["escalation_group"] == "managers"


def test_new_escalation_group_is_in_the_version_snapshot(staff_api, managers):
    staff_api.post(URL, body(on_expiry="escalate", escalation_group="managers"), format="json")

    assert PolicyVersion.objects.get().snapshot[0]["escalation_group"] == "managers"


def test_changing_the_escalation_group_is_in_the_version_diff(staff_api, managers):
    reviewer_group_ensure(name="directors")
    policy_id = staff_api.post(URL, body(on_expiry="escalate", escalation_group="managers"), format="json").json()["id"]

    response = staff_api.patch(
        f"{URL}{policy_id}/", {"escalation_group": "directors", "change_note": "Directors now."}, format="json"
    )

    assert response.status_code == 200
    diff = PolicyVersion.objects.latest("number").diff
    assert diff["changed"][0]["fields"] == {"escalation_group": {"from": "managers", "to": "directors"}}


def test_unknown_escalation_group_is_a_422_that_says_how_to_create_it(staff_api):
    response = staff_api.post(URL, body(on_expiry="escalate", escalation_group="night-shift"), format="json")

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "unknown_group"
    assert "manage.py create_reviewer USERNAME --group night-shift" in error["message"]
    assert error["details"]["codes"] == {"escalation_group": ["unknown_group"]}
    assert not Policy.objects.exists()


def test_unknown_reviewer_group_gets_the_same_code(staff_api):
    response = staff_api.post(URL, body(reviewer_group="night-shift"), format="json")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "unknown_group"


def test_escalate_without_an_escalation_group_is_a_422(staff_api):
    response = staff_api.post(URL, body(on_expiry="escalate"), format="json")

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "escalation_group_required"
    assert "escalation_group" in error["details"]["fields"]
    assert not Policy.objects.exists()


def test_escalation_group_without_the_review_permission_is_a_422(staff_api):
    Group.objects.create(name="marketing")

    response = staff_api.post(URL, body(on_expiry="escalate", escalation_group="marketing"), format="json")

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "group_cannot_review"
    assert "--group marketing" in error["message"]
    assert not Policy.objects.exists()


def test_patching_on_expiry_to_escalate_needs_an_escalation_group(staff_api, admin_user):
    policy = policy_create(actor=admin_user, data={"action_pattern": "wire_money", "mode": "approve"}, change_note="a")

    response = staff_api.patch(f"{URL}{policy.id}/", {"on_expiry": "escalate", "change_note": "b"}, format="json")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "escalation_group_required"
    assert Policy.objects.get().on_expiry == "reject"


def test_clearing_the_escalation_group_of_an_escalating_policy_is_refused(staff_api, managers):
    policy_id = staff_api.post(URL, body(on_expiry="escalate", escalation_group="managers"), format="json").json()["id"]

    response = staff_api.patch(f"{URL}{policy_id}/", {"escalation_group": None, "change_note": "b"}, format="json")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "escalation_group_required"
    assert Policy.objects.get().escalation_group == managers


def test_several_different_problems_are_a_validation_error_listing_each_code(staff_api):
    response = staff_api.post(URL, body(on_expiry="escalate", condition="params.x >"), format="json")

    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"]["codes"] == {
        "condition": ["invalid_condition"],
        "escalation_group": ["escalation_group_required"],
    }


# --- admin form ---------------------------------------------------------------------------------


def admin_form(**overrides):
    data = {
        "action_pattern": "wire_money",
        "mode": "approve",
        "priority": 0,
        "required_approvals": 1,
        "pending_ttl_seconds": 60,
        "approval_ttl_seconds": 60,
        "on_expiry": "escalate",
        "change_note": "why",
    }
    data.update(overrides)
    return PolicyAdminForm(data=data)


def test_admin_form_refuses_escalate_without_an_escalation_group():
    form = admin_form()

    assert not form.is_valid()
    assert form.errors.as_data()["escalation_group"][0].code == "escalation_group_required"


def test_admin_form_refuses_an_escalation_group_that_cannot_review():
    form = admin_form(escalation_group=Group.objects.create(name="marketing").pk)

    assert not form.is_valid()
    assert form.errors.as_data()["escalation_group"][0].code == "group_cannot_review"


def test_admin_form_accepts_a_reviewing_escalation_group(managers):
    assert admin_form(escalation_group=managers.pk).is_valid()


# --- YAML import --------------------------------------------------------------------------------


def test_import_refuses_escalate_without_an_escalation_group(tmp_path, admin_user):
    policy_create(actor=admin_user, data={"action_pattern": "keep_me", "mode": "auto"}, change_note="a")

    with pytest.raises(CommandError, match="escalation_group_required") as raised:
        import_yaml(tmp_path, [{"action_pattern": "wire_money", "mode": "approve", "on_expiry": "escalate"}], "-m", "x")

    assert "rows[0].escalation_group" in str(raised.value)
    assert list(Policy.objects.values_list("action_pattern", flat=True)) == ["keep_me"]


def test_import_refuses_an_unknown_escalation_group_with_the_create_hint(tmp_path):
    rows = [{"action_pattern": "wire_money", "mode": "approve", "on_expiry": "escalate", "escalation_group": "nope"}]

    with pytest.raises(CommandError, match="unknown_group") as raised:
        import_yaml(tmp_path, rows, "-m", "x")

    assert "create_reviewer USERNAME --group nope" in str(raised.value)
    assert not Policy.objects.exists()


def test_import_refuses_an_escalation_group_that_cannot_review(tmp_path):
    Group.objects.create(name="marketing")
    rows = [
        {"action_pattern": "wire_money", "mode": "approve", "on_expiry": "escalate", "escalation_group": "marketing"}
    ]

    with pytest.raises(CommandError, match="group_cannot_review"):
        import_yaml(tmp_path, rows, "-m", "x")


def test_import_sets_the_escalation_group(tmp_path, managers):
    rows = [
        {"action_pattern": "wire_money", "mode": "approve", "on_expiry": "escalate", "escalation_group": "managers"}
    ]

    import_yaml(tmp_path, rows, "-m", "x")

    assert Policy.objects.get().escalation_group == managers


# --- YAML import: matching rows to policies -----------------------------------------------------


@pytest.fixture
def two_policies(admin_user):
    wire = policy_create(
        actor=admin_user,
        data={"action_pattern": "wire_money", "mode": "approve", "priority": 10, "condition": "params.amount > 5"},
        change_note="a",
    )
    search = policy_create(actor=admin_user, data={"action_pattern": "search_*", "mode": "auto"}, change_note="b")
    return wire, search


def test_import_without_ids_updates_the_policy_with_the_same_natural_key(tmp_path, two_policies):
    wire, _search = two_policies
    rows = [
        {"action_pattern": "wire_money", "mode": "block", "priority": 10, "condition": "params.amount > 5"},
        {"action_pattern": "search_*", "mode": "auto"},
    ]

    import_yaml(tmp_path, rows, "-m", "x")

    assert Policy.objects.get(pk=wire.pk).mode == "block"
    assert Policy.objects.count() == 2


def test_import_with_ids_from_another_database_falls_back_to_the_natural_key(tmp_path, two_policies):
    wire, search = two_policies
    rows = [
        {"id": 9001, "action_pattern": "wire_money", "mode": "block", "priority": 10, "condition": "params.amount > 5"},
        {"id": 9002, "action_pattern": "search_*", "mode": "auto"},
    ]

    import_yaml(tmp_path, rows, "-m", "x")

    assert set(Policy.objects.values_list("id", flat=True)) == {wire.pk, search.pk}


def test_an_id_present_here_wins_over_the_natural_key(tmp_path, two_policies):
    wire, search = two_policies
    rows = [
        {"action_pattern": "search_*", "mode": "log"},
        {"id": search.pk, "action_pattern": "search_*", "mode": "auto"},
    ]

    import_yaml(tmp_path, rows, "-m", "x")

    assert Policy.objects.get(pk=search.pk).mode == "auto"
    assert not Policy.objects.filter(pk=wire.pk).exists()
    assert Policy.objects.filter(action_pattern="search_*", mode="log").exclude(pk=search.pk).count() == 1


def test_a_changed_priority_is_a_different_natural_key(tmp_path, two_policies):
    wire, _search = two_policies
    rows = [{"action_pattern": "wire_money", "mode": "approve", "priority": 11, "condition": "params.amount > 5"}]

    import_yaml(tmp_path, rows, "-m", "x")

    assert Policy.objects.get().pk != wire.pk


def test_dry_run_shows_create_update_unchanged_and_delete_per_row_and_changes_nothing(tmp_path, two_policies):
    wire, search = two_policies
    versions = PolicyVersion.objects.count()
    rows = [
        {"action_pattern": "wire_money", "mode": "block", "priority": 10, "condition": "params.amount > 5"},
        {"action_pattern": "delete_*", "mode": "approve"},
    ]

    out = import_yaml(tmp_path, rows, "--dry-run")

    assert f"update    policy {wire.pk} (wire_money), row 0, matched by natural key: mode" in out
    assert "create    a new policy (delete_*), row 1" in out
    assert f"delete    policy {search.pk} (search_*), not in the file" in out
    assert "Dry run: nothing changed." in out
    assert Policy.objects.get(pk=wire.pk).mode == "approve"
    assert PolicyVersion.objects.count() == versions


def test_dry_run_says_unchanged_for_a_row_matched_by_id(tmp_path, two_policies):
    _wire, search = two_policies
    rows = [{"id": search.pk, "action_pattern": "search_*", "mode": "auto"}]

    out = import_yaml(tmp_path, rows, "--dry-run")

    assert f"unchanged policy {search.pk} (search_*), row 0, matched by id" in out


def test_import_reports_the_counts(tmp_path, two_policies):
    rows = [
        {"action_pattern": "wire_money", "mode": "block", "priority": 10, "condition": "params.amount > 5"},
        {"action_pattern": "delete_*", "mode": "approve"},
    ]

    out = import_yaml(tmp_path, rows, "-m", "x")

    assert "(1 created, 1 updated, 0 unchanged, 1 deleted)" in out
