"""Policies as code (export/import YAML) and the simulate page."""

from __future__ import annotations

from io import StringIO

import pytest
import yaml
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command

from policies.models import Policy, PolicyVersion
from policies.services import policy_create, policy_table_snapshot
from reviewers.services import reviewer_group_ensure
from tests.factories import PendingRequestFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def table(admin_user):
    Group.objects.create(name="finance")
    reviewer_group_ensure(name="managers")
    policy_create(
        actor=admin_user,
        data={
            "action_pattern": "execute_financial_action",
            "mode": "approve",
            "condition": "params.amount > 1000",
            "required_approvals": 2,
            "reviewer_group": "finance",
            "on_expiry": "escalate",
            "escalation_group": "managers",
            "description": "Big money: two people.",
        },
        change_note="v1",
    )
    policy_create(actor=admin_user, data={"action_pattern": "search_*", "mode": "auto"}, change_note="v2")


def export() -> str:
    out = StringIO()
    call_command("export_policies", stdout=out)
    return out.getvalue()


def test_yaml_round_trip_keeps_the_table_identical(table, tmp_path):
    before = policy_table_snapshot()
    path = tmp_path / "policies.yaml"
    path.write_text(export())
    Policy.objects.all().delete()

    call_command("import_policies", str(path), note="Restore from git", stdout=StringIO())

    after = policy_table_snapshot()
    strip = [{k: v for k, v in row.items() if k != "id"} for row in before]
    assert [{k: v for k, v in row.items() if k != "id"} for row in after] == strip
    assert PolicyVersion.objects.latest("number").note == "Restore from git"


def test_export_is_readable_yaml_with_every_field(table):
    document = yaml.safe_load(export())

    assert document["version"] == 2
    assert document["policies"][0]["condition"] == "params.amount > 1000"
    assert document["policies"][0]["reviewer_group"] == "finance"


def test_import_validates_everything_before_changing_anything(table, tmp_path):
    document = yaml.safe_load(export())
    document["policies"][0]["mode"] = "auto"
    document["policies"].append({"action_pattern": "x", "mode": "auto", "condition": "params.amount >"})
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(document))
    before = policy_table_snapshot()

    with pytest.raises(CommandError, match=r"(?s)invalid_condition.*rows\[2\]\.condition"):
        call_command("import_policies", str(path), note="oops", stdout=StringIO())

    assert policy_table_snapshot() == before
    assert PolicyVersion.objects.count() == 2


def test_import_needs_a_change_note(table, tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(export())

    with pytest.raises(CommandError, match="change_note_required"):
        call_command("import_policies", str(path), stdout=StringIO())


def test_import_dry_run_prints_the_simulation_and_changes_nothing(table, tmp_path):
    for _ in range(3):
        PendingRequestFactory(action_type="search_web", mode="approve")
    document = yaml.safe_load(export())
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(document))
    out = StringIO()

    call_command("import_policies", str(path), "--dry-run", stdout=out)

    assert "3 search_web would go from approve to auto" in out.getvalue()
    assert "Dry run: nothing changed." in out.getvalue()
    assert PolicyVersion.objects.count() == 2


def test_import_refuses_malformed_yaml(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("policies: [unclosed")

    with pytest.raises(CommandError, match="invalid_yaml"):
        call_command("import_policies", str(path), note="x", stdout=StringIO())


def test_simulate_page_shows_the_table_of_changes(table, admin_user, client):
    for _ in range(4):
        PendingRequestFactory(action_type="search_web", mode="approve")
    client.force_login(admin_user)

    page = client.get("/policies/simulate/")
    response = client.post(
        "/policies/simulate/", {"table_yaml": page.context["table_yaml"], "days": "7", "action": "simulate"}
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert "4 search_web would go from approve to auto" in html
    assert 'id="simulation-table"' in html


def test_simulate_page_shows_the_compiler_error(admin_user, client):
    client.force_login(admin_user)

    response = client.post(
        "/policies/simulate/",
        {"table_yaml": "policies:\n- {action_pattern: x, mode: auto, condition: '1 +'}\n", "action": "simulate"},
    )

    assert response.status_code == 422
    assert "Syntax error" in response.content.decode()


def test_simulate_page_publishes_atomically_with_a_note(table, admin_user, client):
    client.force_login(admin_user)

    response = client.post(
        "/policies/simulate/",
        {
            "table_yaml": "policies:\n- {action_pattern: search_*, mode: log}\n",
            "action": "publish",
            "change_note": "Log searches",
        },
    )

    assert response.status_code == 200
    assert list(Policy.objects.values_list("action_pattern", "mode")) == [("search_*", "log")]
    assert PolicyVersion.objects.latest("number").note == "Log searches"


def test_simulate_page_is_staff_only(alice, client):
    client.force_login(alice)

    assert client.get("/policies/simulate/").status_code == 302  # to the admin login
