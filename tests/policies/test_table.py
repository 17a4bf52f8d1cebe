from __future__ import annotations

import pytest
from django.core.management import call_command

from policies.models import Policy, PolicyVersion
from policies.selectors import policy_table_current
from policies.services import policy_version_record

pytestmark = pytest.mark.django_db

STANDARD_RISK_MAP = {
    "search_web": "auto",
    "summarize_document": "auto",
    "classify_ticket": "auto",
    "update_internal_record": "log",
    "draft_internal_message": "log",
    "send_external_email": "approve",
    "update_customer_record": "approve",
    "execute_financial_action": "approve",
    "delete_any_data": "approve",
    "legal_advice": "block",
    "medical_recommendation": "block",
    "hiring_decision": "block",
}


def test_load_default_policies_loads_the_standard_risk_map():
    call_command("load_default_policies")

    assert dict(Policy.objects.values_list("action_pattern", "mode")) == STANDARD_RISK_MAP
    assert PolicyVersion.objects.count() == 1


def test_loading_defaults_twice_keeps_admin_edits():
    call_command("load_default_policies")
    Policy.objects.filter(action_pattern="search_web").update(mode="log")

    call_command("load_default_policies")

    assert Policy.objects.get(action_pattern="search_web").mode == "log"
    assert Policy.objects.count() == len(STANDARD_RISK_MAP)


def test_default_pending_and_approval_lifetimes():
    policy = Policy.objects.create(action_pattern="x", mode="approve")

    assert (policy.pending_ttl_seconds, policy.approval_ttl_seconds) == (4 * 3600, 15 * 60)


def test_cached_table_sees_a_new_version():
    call_command("load_default_policies")
    assert policy_table_current().candidates("search_web")[0].mode == "auto"

    Policy.objects.filter(action_pattern="search_web").update(mode="block")
    policy_version_record(actor=None, note="block search")

    assert policy_table_current().candidates("search_web")[0].mode == "block"


def test_disabled_policy_is_ignored():
    Policy.objects.create(action_pattern="search_web", mode="auto", enabled=False)
    policy_version_record(actor=None, note="t")

    assert policy_table_current().candidates("search_web") == []


def test_admin_save_records_a_version(admin_user, client):
    client.force_login(admin_user)

    response = client.post(
        "/admin/policies/policy/add/",
        {
            "action_pattern": "send_*",
            "mode": "approve",
            "priority": 0,
            "risk": "",
            "pending_ttl_seconds": 60,
            "approval_ttl_seconds": 30,
            "enabled": "on",
            "description": "",
            "required_approvals": 1,
            "on_expiry": "reject",
            "change_note": "Hold all outgoing sends.",
        },
    )

    assert response.status_code == 302
    version = PolicyVersion.objects.get()
    assert version.created_by == admin_user
    assert [row["action_pattern"] for row in version.snapshot] == ["send_*"]
