"""A waiting agent holds no database connection while it sleeps (issue 12).

With a connection held for the whole wait, 1,000 waiting agents exhausted the psycopg pool
(bench/e2e.py: 719 of them got a 500 after the pool's 10 s timeout). Each of the long-poll's
reads now hands the connection back. Outside any transaction, as in production.
"""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from approvals.api.wait import _agent_for_api_key, _as_agent_sees_it, _load
from approvals.services import agent_create
from tests.factories import PendingRequestFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_each_read_of_the_long_poll_hands_its_connection_back():
    agent, key = agent_create(name="waiter")
    request = PendingRequestFactory(agent=agent)
    connection.ensure_connection()

    assert _agent_for_api_key(key) == agent
    assert connection.connection is None
    action, answer = _load(agent, str(request.pk))
    assert connection.connection is None
    assert action.pk == request.pk and action.status == "pending"
    assert answer is None  # nothing to answer yet: the waiter sleeps
    assert _as_agent_sees_it(action)["status"] == "pending"
    assert connection.connection is None


def test_a_decided_request_is_read_with_its_answer_in_one_go():
    agent, _ = agent_create(name="waiter")
    request = PendingRequestFactory(agent=agent, status="rejected")
    connection.ensure_connection()

    action, answer = _load(agent, str(request.pk))

    assert connection.connection is None
    assert action.status == "rejected"
    assert answer == _as_agent_sees_it(action)


def test_inside_a_transaction_the_connection_is_left_alone():
    agent, _ = agent_create(name="waiter")
    request = PendingRequestFactory(agent=agent)
    with transaction.atomic():
        _load(agent, str(request.pk))
        assert connection.connection is not None
