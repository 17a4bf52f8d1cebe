"""The queue page's kill-switch banners: in the page's state, and live over the real websocket."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async

from approvals.services import agent_create, agent_pause, agent_resume
from reviewers.services import reviewer_create
from tests.reviewers.test_consumer import connect_as


def queue_state(client) -> dict:
    html = client.get("/queue/").content.decode()
    start = html.index('<script id="queue-data" type="application/json">') + len(
        '<script id="queue-data" type="application/json">'
    )
    return json.loads(html[start : html.index("</script>", start)])


@pytest.mark.django_db
def test_the_queue_page_carries_the_pauses_in_force_for_its_banners(client, alice):
    agent_create(name="support-bot")
    agent_pause(agent_name="support-bot", reason="Runaway <b>loop</b>", by_label="sam")
    client.force_login(alice)

    pauses = queue_state(client)["pauses"]

    assert [(p["kind"], p["target"], p["paused_by"], p["reason"]) for p in pauses] == [
        ("agent", "support-bot", "sam", "Runaway <b>loop</b>")
    ]
    assert "Runaway <b>loop</b>" not in client.get("/queue/").content.decode()  # json_script escapes it


@pytest.mark.django_db
def test_cards_json_carries_the_pauses_so_a_reconnected_page_redraws_them(client, alice):
    agent_create(name="support-bot")
    agent_pause(agent_name="support-bot", reason="Runaway", by_label="sam")
    agent_resume(agent_name="support-bot", by_label="sam")
    client.force_login(alice)

    assert client.get("/queue/cards.json").json()["pauses"] == []


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_an_open_queue_hears_a_pause_start_and_end():
    alice = await sync_to_async(reviewer_create)(username="alice", password="pw-long-enough")
    await sync_to_async(agent_create)(name="support-bot")
    communicator, connected, _ = await connect_as(alice)
    assert connected
    assert (await communicator.receive_json_from(timeout=5))["type"] == "hello"

    await sync_to_async(agent_pause)(agent_name="support-bot", reason="Runaway loop", by_label="sam")
    paused = await communicator.receive_json_from(timeout=5)
    await sync_to_async(agent_resume)(agent_name="support-bot", by_label="sam")
    resumed = await communicator.receive_json_from(timeout=5)
    await communicator.disconnect()

    assert paused["type"] == "paused"
    assert {k: paused["pause"][k] for k in ("kind", "target", "reason", "paused_by")} == {
        "kind": "agent",
        "target": "support-bot",
        "reason": "Runaway loop",
        "paused_by": "sam",
    }
    assert (resumed["type"], resumed["pause"]["id"]) == ("resumed", paused["pause"]["id"])
