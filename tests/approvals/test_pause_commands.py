"""manage.py pause_agent / resume_agent: the kill switch from a shell."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from approvals.models import ActionRequest, AuditEvent, Pause, Status
from tests.factories import UserFactory
from tests.helpers import submit_as

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("default_policies")]


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_pause_agent_pauses_it_and_says_what_it_cancelled(agent):
    pending = submit_as(agent)

    out = run("pause_agent", "support-bot", "--reason", "Runaway loop")

    assert "Paused agent support-bot: 1 pending request(s) cancelled, 0 approval(s) revoked." in out
    pause = Pause.objects.get()
    assert (pause.reason, pause.paused_by, pause.paused_by_label.startswith("manage.py pause_agent")) == (
        "Runaway loop",
        None,
        True,
    )
    assert ActionRequest.objects.get(pk=pending.pk).status == Status.CANCELLED
    assert AuditEvent.objects.get(request=pending, kind="cancelled").actor_kind == "system"


def test_pause_agent_records_the_staff_user_named_by_by(agent):
    UserFactory(username="sam", is_staff=True)

    run("pause_agent", "support-bot", "--reason", "Runaway loop", "--by", "sam")

    assert Pause.objects.get().paused_by.username == "sam"


def test_pause_agent_needs_a_reason(agent):
    with pytest.raises(CommandError):
        call_command("pause_agent", "support-bot", stdout=io.StringIO(), stderr=io.StringIO())

    assert not Pause.objects.exists()


def test_pause_agent_with_an_empty_reason_is_refused(agent):
    with pytest.raises(CommandError, match="reason_required"):
        run("pause_agent", "support-bot", "--reason", "")


def test_pause_agent_of_an_unknown_agent_is_refused():
    with pytest.raises(CommandError, match="agent_not_found"):
        run("pause_agent", "nobody", "--reason", "Runaway")


def test_resume_agent_lifts_the_pause(agent):
    run("pause_agent", "support-bot", "--reason", "Runaway loop")

    out = run("resume_agent", "support-bot")

    assert "Resumed agent support-bot" in out
    assert not Pause.objects.filter(resumed_at__isnull=True).exists()
    assert submit_as(agent).status == Status.PENDING


def test_resume_agent_that_is_not_paused_is_refused(agent):
    with pytest.raises(CommandError, match="not_paused"):
        run("resume_agent", "support-bot")


def test_the_action_type_flag_pauses_and_resumes_an_action_type(agent):
    run("pause_agent", "send_external_email", "--action-type", "--reason", "Mail provider incident")
    blocked = submit_as(agent)
    run("resume_agent", "send_external_email", "--action-type")

    assert (blocked.status, blocked.verdict_reason) == (Status.BLOCKED, "action_type_paused")
    assert submit_as(agent).status == Status.PENDING
