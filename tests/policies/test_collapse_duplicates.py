"""A policy's collapse_duplicates travels through the API, the YAML and the compiled table."""

from __future__ import annotations

import pytest

from policies.evaluation import RequestFacts, evaluate
from policies.selectors import policy_table_current, policy_table_from_rows
from policies.services import policy_create
from policies.yaml_io import policies_from_yaml, policies_to_yaml

pytestmark = pytest.mark.django_db


def test_the_policy_api_saves_and_returns_collapse_duplicates(staff_api):
    response = staff_api.post(
        "/api/v1/policies/",
        {"action_pattern": "send_sms", "mode": "approve", "collapse_duplicates": False, "change_note": "retries"},
        format="json",
    )

    assert response.status_code == 201, response.content
    assert response.json()["collapse_duplicates"] is False


def test_yaml_export_and_import_keep_collapse_duplicates(admin_user):
    policy_create(
        actor=admin_user,
        data={"action_pattern": "send_sms", "mode": "approve", "collapse_duplicates": False},
        change_note="x",
    )

    rows = policies_from_yaml(policies_to_yaml())

    assert [row["collapse_duplicates"] for row in rows] == [False]
    assert policy_table_from_rows(rows).policies[0].collapse_duplicates is False


def test_the_verdict_carries_the_deciding_policys_setting(admin_user):
    policy_create(
        actor=admin_user,
        data={"action_pattern": "send_sms", "mode": "approve", "collapse_duplicates": False},
        change_note="x",
    )

    verdict = evaluate(table=policy_table_current(), request=RequestFacts(action_type="send_sms"))
    default = evaluate(table=policy_table_current(), request=RequestFacts(action_type="anything_else"))

    assert verdict.collapse_duplicates is False
    assert default.collapse_duplicates is None
