"""No webhook is lost when Redis is down between the commit and the delivery.

Everything here is real: a dedicated redis-server that the test stops and starts
again, the decision committed while it is down, a ``celery -A config worker -B``
process (worker and beat) started once it is back, and an HTTP receiver on
loopback. The shared session Redis is left alone; the Celery app and the channel
layer of this process point at the dedicated one only for the test.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.test import override_settings
from standardwebhooks.webhooks import Webhook

from approvals.models import ActionRequest, Decision, Status, WebhookAttempt, WebhookDelivery
from approvals.services import action_request_decide, agent_create
from countersign_servers import RunningServer, free_port, start_redis
from policies.services import policies_load_defaults
from tests.e2e.conftest import submit_pending
from tests.processes import celery_worker_process
from tests.webhook_receiver import Receiver, webhook_receiver

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SWEEP_INTERVAL_SECONDS = 1
DELIVERY_DEADLINE_SECONDS = 15


class DedicatedRedis:
    """A redis-server of this test's own, on a fixed port, that can be stopped and started again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.server: RunningServer | None = start_redis(port=self.port)

    def stop(self) -> None:
        assert self.server is not None and self.server.process is not None
        process = self.server.process
        process.send_signal(signal.SIGTERM)
        process.wait(10)
        self.server.stop()  # removes its working directory
        self.server = None

    def start(self) -> None:
        self.server = start_redis(port=self.port)

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


@pytest.fixture
def dedicated_redis() -> Iterator[DedicatedRedis]:
    redis = DedicatedRedis()
    yield redis
    redis.close()


@contextmanager
def code_under_test_uses(redis_url: str) -> Iterator[None]:
    """Point this process's Celery broker and channel layer at ``redis_url``; restore the shared ones after."""
    from config.celery import app

    def drop_broker_pools(*, close: bool) -> None:
        # The app caches its connection and producer pools for the broker it first saw. kombu
        # keeps them in a process-wide registry keyed by broker URL: the shared broker's pools
        # are dropped here but never closed, as they are handed back when its URL is used again.
        if close:
            for pool in (app.amqp._producer_pool, app._pool):
                if pool is not None:
                    pool.force_close_all()
        app._pool = None
        app.amqp._producer_pool = None

    previous_broker = app.conf.broker_url
    layers = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [redis_url], "prefix": f"cs-outage-{os.getpid()}"},
        }
    }
    drop_broker_pools(close=False)
    app.conf.broker_url = redis_url
    try:
        with override_settings(CELERY_BROKER_URL=redis_url, CHANNEL_LAYERS=layers):
            yield
    finally:
        drop_broker_pools(close=True)
        app.conf.broker_url = previous_broker


@contextmanager
def worker_with_beat(redis_url: str, workdir: Path, log_path: Path) -> Iterator[subprocess.Popen]:
    """``celery -A config worker -B`` on the test database and ``redis_url``, the outbox swept every second."""
    env = {
        "CELERY_BROKER_URL": None,
        "REDIS_URL": redis_url,
        "COUNTERSIGN_SWEEP_INTERVAL_SECONDS": str(SWEEP_INTERVAL_SECONDS),
    }
    # The start-up ping goes through the app's broker, which code_under_test_uses() points at redis_url.
    with celery_worker_process(
        name="outage", log_path=log_path, env=env, beat_schedule=workdir / "beat-schedule"
    ) as process:
        yield process


def wait_for_hits(receiver: Receiver, count: int, *, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while len(receiver.received) < count:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_event_committed_while_redis_is_down_is_delivered_once_by_the_sweep_after_it_returns(
    dedicated_redis, bob, caplog, tmp_path, artifacts_dir
):
    policies_load_defaults()
    agent, _key = agent_create(name="support-bot")
    log_path = artifacts_dir / "celery-worker-redis-outage.log"
    with webhook_receiver() as receiver, code_under_test_uses(dedicated_redis.url):
        request = submit_pending(agent, callback_url=receiver.url)

        dedicated_redis.stop()
        with caplog.at_level(logging.WARNING, logger="approvals"):
            # Autocommit (transaction=True test): the service's own transaction commits, then
            # its on-commit hook tries to queue the delivery on the stopped broker.
            action_request_decide(request_id=request.pk, reviewer=bob, approve=True)

        assert any("left in the outbox" in r.getMessage() for r in caplog.records), "the enqueue did not fail"
        assert ActionRequest.objects.get(pk=request.pk).status == Status.APPROVED
        assert Decision.objects.filter(request=request).count() == 1
        delivery = WebhookDelivery.objects.get(request=request)
        assert (delivery.state, delivery.attempts, delivery.event_type) == (
            WebhookDelivery.State.PENDING,
            0,
            "action.approved",
        )
        assert not WebhookAttempt.objects.filter(delivery=delivery).exists()
        assert receiver.received == []

        dedicated_redis.start()  # empty: nothing was queued, so only the outbox sweep can find the event
        with worker_with_beat(dedicated_redis.url, tmp_path, log_path):
            assert wait_for_hits(receiver, 1, seconds=DELIVERY_DEADLINE_SECONDS), (
                f"no webhook within {DELIVERY_DEADLINE_SECONDS} s of the worker starting (see {log_path})"
            )
            # Several more sweeps run; none may send the event again.
            time.sleep(4 * SWEEP_INTERVAL_SECONDS)

    [hit] = receiver.received
    payload = Webhook(agent.webhook_secret).verify(hit.body, hit.headers)
    assert payload["type"] == "action.approved"
    assert payload["data"]["id"] == str(request.pk)
    assert hit.headers["webhook-id"] == str(delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.last_status_code) == (WebhookDelivery.State.DELIVERED, 1, 200)
    assert WebhookAttempt.objects.filter(delivery=delivery).count() == 1
