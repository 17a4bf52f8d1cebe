from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from approvals.api.authentication import agent_for_api_key
from approvals.models import Agent

pytestmark = pytest.mark.django_db


def test_create_agent_prints_secret_then_a_working_api_key_last():
    out = io.StringIO()

    call_command("create_agent", "billing-bot", stdout=out, stderr=io.StringIO())

    lines = out.getvalue().strip().splitlines()
    assert lines[-2].startswith("whsec_")
    assert agent_for_api_key(lines[-1]) == Agent.objects.get(name="billing-bot")


def test_create_reviewer_puts_user_in_group_with_review_permission():
    call_command("create_reviewer", "dana", "--password", "a-long-password", "--group", "finance", stdout=io.StringIO())

    from django.contrib.auth import get_user_model

    dana = get_user_model().objects.get(username="dana")
    assert dana.check_password("a-long-password")
    assert list(dana.groups.values_list("name", flat=True)) == ["finance"]
    assert dana.has_perm("approvals.review_actionrequest")


def test_seed_demo_creates_accounts_and_prints_the_agent_key_once(tmp_path):
    out = io.StringIO()
    key_file = tmp_path / "key"

    call_command("seed_demo", "--key-file", str(key_file), stdout=out)
    second = io.StringIO()
    call_command("seed_demo", stdout=second)

    key = key_file.read_text().strip()
    assert key in out.getvalue()
    assert key not in second.getvalue()
    assert agent_for_api_key(key).name == "demo-agent"
