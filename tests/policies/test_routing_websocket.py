"""A request routed to a reviewer group is pushed to that group's live queues only."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from approvals.services import Submission, action_request_submit, agent_create
from policies.services import policy_create
from reviewers.services import reviewer_create
from tests.reviewers.test_consumer import connect_as

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


def submit_routed():
    policy_create(
        actor=None,
        data={"action_pattern": "execute_financial_action", "mode": "approve", "reviewer_group": "finance"},
        change_note="Money goes to finance.",
    )
    agent, _ = agent_create(name="pay-bot")
    return action_request_submit(
        agent=agent,
        submission=Submission(
            action_type="execute_financial_action", params={"amount": 5000}, summary="Refund", evidence=[]
        ),
    ).request


async def test_only_the_routed_group_receives_the_live_event():
    fiona = await sync_to_async(reviewer_create)(username="fiona", password="pw-long-enough", group_name="finance")
    alice = await sync_to_async(reviewer_create)(username="alice", password="pw-long-enough")
    member, connected, _ = await connect_as(fiona)
    assert connected
    outsider, connected, _ = await connect_as(alice)
    assert connected
    assert (await member.receive_json_from(timeout=5))["type"] == "hello"
    assert (await outsider.receive_json_from(timeout=5))["type"] == "hello"

    request = await sync_to_async(submit_routed)()

    added = await member.receive_json_from(timeout=5)
    assert (added["type"], added["card"]["id"], added["card"]["reviewer_group"]) == (
        "added",
        str(request.id),
        "finance",
    )
    assert await outsider.receive_nothing(timeout=0.5)
    await member.disconnect()
    await outsider.disconnect()
