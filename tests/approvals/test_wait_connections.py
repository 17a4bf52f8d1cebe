"""A waiting agent holds no database connection while it sleeps (issue 12).

With a connection held for the whole wait, 1,000 waiting agents exhausted the psycopg pool
(bench/e2e.py: 719 of them got a 500 after the pool's 10 s timeout). Each of the long-poll's
reads now hands the connection back. Outside any transaction, as in production.
"""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from approvals.api.wait import _agent_for_api_key, _as_agent_sees_it, _load
from approvals.selectors import action_requests_settled_among
from approvals.selectors import requests as requests_selectors
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


def test_the_recheck_round_reads_every_awaited_request_in_one_statement(django_assert_num_queries):
    agent, _ = agent_create(name="waiter")
    pending = PendingRequestFactory.create_batch(3, agent=agent)
    decided = PendingRequestFactory.create_batch(2, agent=agent, status="rejected")

    with django_assert_num_queries(1):
        settled = action_requests_settled_among([request.pk for request in pending + decided])

    assert settled == {request.pk for request in decided}


def test_the_recheck_round_reads_a_long_list_in_chunks(monkeypatch, django_assert_num_queries):
    monkeypatch.setattr(requests_selectors, "SETTLED_READ_CHUNK", 2)
    agent, _ = agent_create(name="waiter")
    decided = PendingRequestFactory.create_batch(5, agent=agent, status="rejected")

    with django_assert_num_queries(3):
        settled = action_requests_settled_among([request.pk for request in decided])

    assert settled == {request.pk for request in decided}
