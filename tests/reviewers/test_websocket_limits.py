"""The queue's websocket bounds what a connection may send: message size, and messages a second."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from reviewers.consumers import REFUSED_BEFORE_CLOSE
from tests.reviewers.test_consumer import connect_as

ROOT = Path(__file__).resolve().parents[2]
NOT_A_CLAIM = "{}"  # answered with an error the consumer always sends: proof the message was handled


async def connected_reviewer(alice):
    communicator, connected, _ = await connect_as(alice)
    assert connected
    assert (await communicator.receive_json_from(timeout=5))["type"] == "hello"
    return communicator


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_message_over_the_size_limit_in_utf8_bytes_is_refused_and_closes_with_1009(alice, settings):
    communicator = await connected_reviewer(alice)
    characters = settings.COUNTERSIGN_WS_MAX_MESSAGE_BYTES // 2 + 10  # fewer characters than the limit, more bytes

    await communicator.send_to(text_data='"' + "é" * characters + '"')

    error = await communicator.receive_json_from(timeout=5)
    assert error["error"]["code"] == "message_too_large"
    assert error["error"]["details"]["limit_bytes"] == settings.COUNTERSIGN_WS_MAX_MESSAGE_BYTES
    assert await communicator.receive_output(timeout=5) == {"type": "websocket.close", "code": 1009}
    await communicator.wait()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_message_under_the_size_limit_is_handled_and_the_socket_stays_open(alice, settings):
    communicator = await connected_reviewer(alice)

    await communicator.send_to(text_data="x" * (settings.COUNTERSIGN_WS_MAX_MESSAGE_BYTES - 1))
    await communicator.send_to(text_data=NOT_A_CLAIM)

    assert (await communicator.receive_json_from(timeout=5))["error"]["code"] == "malformed_json"
    assert (await communicator.receive_json_from(timeout=5))["type"] == "error"
    assert await communicator.receive_nothing(timeout=0.2)
    await communicator.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_messages_over_the_rate_get_one_rate_limited_error_and_the_rate_recovers(alice, settings):
    settings.COUNTERSIGN_WS_MESSAGES_PER_SECOND = 1
    settings.COUNTERSIGN_WS_MESSAGE_BURST = 2
    communicator = await connected_reviewer(alice)

    for _ in range(4):
        await communicator.send_to(text_data=NOT_A_CLAIM)
    answers = [await communicator.receive_json_from(timeout=5) for _ in range(3)]
    quiet = await communicator.receive_nothing(timeout=0.2)
    await asyncio.sleep(1.1)
    await communicator.send_to(text_data=NOT_A_CLAIM)
    later = await communicator.receive_json_from(timeout=5)

    assert [a.get("error", {}).get("code") for a in answers] == [None, None, "rate_limited"]
    assert answers[2]["error"]["details"] == {"messages_per_second": 1, "burst": 2}
    assert quiet  # the 4th message was dropped without a second error
    assert later["type"] == "error" and "error" not in later  # handled again
    await communicator.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_connection_that_keeps_sending_over_the_rate_is_closed_with_1008(alice, settings):
    settings.COUNTERSIGN_WS_MESSAGES_PER_SECOND = 1
    settings.COUNTERSIGN_WS_MESSAGE_BURST = 1
    communicator = await connected_reviewer(alice)

    for _ in range(1 + REFUSED_BEFORE_CLOSE):
        await communicator.send_to(text_data=NOT_A_CLAIM)

    assert (await communicator.receive_json_from(timeout=5))["type"] == "error"
    assert (await communicator.receive_json_from(timeout=5))["error"]["code"] == "rate_limited"
    assert await communicator.receive_output(timeout=5) == {"type": "websocket.close", "code": 1008}
    await communicator.wait()


def test_every_way_we_launch_uvicorn_gives_it_the_same_websocket_message_limit():
    launchers = {name: (ROOT / name).read_text() for name in ("scripts/run.sh", "Dockerfile", "docker-compose.yml")}

    for name, text in launchers.items():
        assert re.search(r"--ws-max-size \"?\$+\{COUNTERSIGN_WS_MAX_MESSAGE_BYTES:-65536\}", text), name
