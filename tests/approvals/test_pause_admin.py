"""The kill switch in the Django admin: pause agents (with a reason), pause an action type, resume."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from approvals.models import ActionRequest, Pause, Status
from approvals.services import agent_pause
from tests.factories import UserFactory
from tests.helpers import submit_as

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("default_policies")]

AGENTS = "/admin/approvals/agent/"
PAUSES = "/admin/approvals/pause/"


@pytest.fixture
def admin_client_(client, admin_user):
    client.force_login(admin_user)
    return client


def test_the_pause_action_asks_for_a_reason_first(admin_client_, agent):
    response = admin_client_.post(AGENTS, {"action": "pause_agents", "_selected_action": [agent.pk]})

    assert response.status_code == 200
    assert b'name="reason"' in response.content
    assert not Pause.objects.exists()


def test_the_pause_action_pauses_the_selected_agents_with_the_reason(admin_client_, agent):
    pending = submit_as(agent)

    response = admin_client_.post(
        AGENTS, {"action": "pause_agents", "_selected_action": [agent.pk], "apply": "1", "reason": "Runaway loop"}
    )

    assert response.status_code == 302
    pause = Pause.objects.get()
    assert (pause.agent, pause.reason, pause.paused_by_label) == (agent, "Runaway loop", "admin")
    assert ActionRequest.objects.get(pk=pending.pk).status == Status.CANCELLED


def test_the_pause_action_without_a_reason_pauses_nothing(admin_client_, agent):
    response = admin_client_.post(
        AGENTS, {"action": "pause_agents", "_selected_action": [agent.pk], "apply": "1", "reason": ""}
    )

    assert response.status_code == 200
    assert b"A reason is required" in response.content
    assert not Pause.objects.exists()


def test_the_resume_action_resumes_the_selected_agents(admin_client_, agent):
    agent_pause(agent_name=agent.name, reason="Runaway", by_label="test")

    admin_client_.post(AGENTS, {"action": "resume_agents", "_selected_action": [agent.pk]})

    assert Pause.objects.get().resumed_by_label == "admin"


def test_staff_without_the_change_permission_on_pauses_are_not_offered_the_action(client, agent):
    viewer = UserFactory(username="viewer", is_staff=True)
    viewer.user_permissions.add(*Permission.objects.filter(codename__in=["view_agent", "change_agent"]))
    client.force_login(viewer)

    client.post(AGENTS, {"action": "pause_agents", "_selected_action": [agent.pk], "apply": "1", "reason": "x"})

    assert not Pause.objects.exists()


def test_the_pauses_page_pauses_an_action_type(admin_client_, agent):
    pending = submit_as(agent)

    response = admin_client_.post(f"{PAUSES}add/", {"action_type": "send_external_email", "reason": "Mail incident"})

    assert response.status_code == 302
    assert Pause.objects.get().action_type == "send_external_email"
    assert ActionRequest.objects.get(pk=pending.pk).status == Status.CANCELLED


def test_the_pauses_page_refuses_an_agent_and_an_action_type_at_once(admin_client_, agent):
    response = admin_client_.post(
        f"{PAUSES}add/", {"agent": agent.pk, "action_type": "send_external_email", "reason": "x"}
    )

    assert response.status_code == 200
    assert not Pause.objects.exists()


def test_the_pauses_page_resumes_the_selected_pauses(admin_client_, agent):
    pause = agent_pause(agent_name=agent.name, reason="Runaway", by_label="test").pause

    admin_client_.post(PAUSES, {"action": "resume_pauses", "_selected_action": [pause.pk]})

    pause.refresh_from_db()
    assert (pause.is_active, pause.resumed_by_label) == (False, "admin")


def test_the_pauses_page_lists_the_pause_reason_escaped(admin_client_, agent):
    agent_pause(agent_name=agent.name, reason="<script>alert(1)</script>", by_label="test")

    html = admin_client_.get(PAUSES).content.decode()

    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)</script>" not in html
