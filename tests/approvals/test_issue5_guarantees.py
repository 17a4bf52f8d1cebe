"""Issue 5's must-shows that had no test of their own: webhooks on every final state through the
agent's default callback, backoff with jitter for 24 hours, what each attempt records and what
admins see, the SSRF refusals that a literal-address list misses, and every refused execution
report kept as a violation."""

from __future__ import annotations

import itertools
import json
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from typing import Any

import httpx
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from approvals.binding import approval_token, final_params_hash
from approvals.models import ActionRequest, Agent, AuditEvent, Status, WebhookAttempt, WebhookDelivery
from approvals.services import (
    Submission,
    action_request_cancel,
    action_request_decide,
    action_request_report_execution,
    action_request_submit,
    action_requests_expire_due,
    agent_create,
)
from approvals.tasks import deliver_due_webhooks
from approvals.webhooks import webhook_delivery_attempt
from core.errors import InvalidInput
from core.netguard import validate_outbound_url
from core.outbox import next_attempt_delay
from countersign_servers import free_port
from tests.approvals.conftest import attempt_each_retry_when_due
from tests.helpers import PASSWORD, reject, run_at_once, submission_body
from tests.webhook_receiver import webhook_receiver

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("default_policies")]

EMAIL = {"to": "customer@example.org", "subject": "Your refund"}


def submit(agent: Agent, *, callback_url: str = "", action_type: str = "send_external_email") -> ActionRequest:
    return action_request_submit(
        agent=agent,
        submission=Submission(
            action_type=action_type, params=EMAIL, summary="Email the customer", evidence=[], callback_url=callback_url
        ),
    ).request


def execute(agent: Agent, request: ActionRequest, **overrides: Any) -> ActionRequest:
    request.refresh_from_db()
    report = {
        "outcome": "succeeded",
        "approval_token": approval_token(request),
        "reported_params_hash": final_params_hash(request),
    }
    report.update(overrides)
    return action_request_report_execution(agent=agent, request_id=request.pk, **report)


# --- a webhook on every final state, to the agent's default callback URL -----------------------


def to_approved(agent, request, reviewer):
    action_request_decide(request_id=request.pk, reviewer=reviewer, approve=True)


def to_rejected(agent, request, reviewer):
    reject(request.pk, reviewer)


def to_expired(agent, request, reviewer):
    ActionRequest.objects.filter(pk=request.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert action_requests_expire_due() == 1


def to_cancelled(agent, request, reviewer):
    action_request_cancel(agent=agent, request_id=request.pk)


def to_executed(agent, request, reviewer):
    to_approved(agent, request, reviewer)
    execute(agent, request)


@pytest.mark.parametrize(
    ("reach", "event_type", "status"),
    [
        (to_approved, "action.approved", "approved"),
        (to_rejected, "action.rejected", "rejected"),
        (to_expired, "action.expired", "expired"),
        (to_cancelled, "action.cancelled", "cancelled"),
        (to_executed, "action.executed", "executed"),
    ],
    ids=["approved", "rejected", "expired", "cancelled", "executed"],
)
def test_every_final_state_is_posted_signed_to_the_agents_default_callback_url(
    reach, event_type, status, alice, default_policies
):
    with webhook_receiver() as receiver:
        agent, _key = agent_create(name="hooked-bot", default_callback_url=receiver.url)
        request = submit(agent)  # no callback_url of its own
        assert not WebhookDelivery.objects.filter(request=request).exists()  # pending is not final

        reach(agent, request, alice)
        delivery = WebhookDelivery.objects.get(request=request, event_type=event_type)
        webhook_delivery_attempt(delivery_id=delivery.pk)

    assert delivery.url == receiver.url
    [hit] = [hit for hit in receiver.received if hit.headers["webhook-id"] == str(delivery.pk)]
    payload = Webhook(agent.webhook_secret).verify(hit.body, hit.headers)
    assert payload["type"] == event_type
    assert payload["data"]["id"] == str(request.pk)
    assert payload["data"]["status"] == status


def test_a_requests_own_callback_url_wins_over_the_agents_default(alice, default_policies):
    with webhook_receiver() as default, webhook_receiver() as own:
        agent, _key = agent_create(name="hooked-bot", default_callback_url=default.url)
        request = submit(agent, callback_url=own.url)
        to_approved(agent, request, alice)

        webhook_delivery_attempt(delivery_id=WebhookDelivery.objects.get(request=request).pk)

    assert len(own.received) == 1
    assert default.received == []


def test_a_request_without_any_callback_url_writes_no_delivery(agent, alice, default_policies):
    request = submit(agent)

    to_executed(agent, request, alice)

    assert not WebhookDelivery.objects.filter(request=request).exists()


# --- retries: exponential backoff with jitter, for up to 24 hours -------------------------------


@pytest.mark.parametrize(
    ("attempts", "ceiling"),
    [(1, 10), (2, 20), (3, 40), (4, 80), (8, 1280), (9, 2560), (10, 3600), (40, 3600)],
)
def test_retry_delay_doubles_per_attempt_with_jitter_and_is_capped_at_an_hour(attempts, ceiling):
    delays = [next_attempt_delay(attempts).total_seconds() for _ in range(200)]

    assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
    assert len(set(delays)) > 150  # jittered: retries of many deliveries do not fire in lockstep


def test_a_receiver_that_keeps_failing_is_retried_for_24_hours_then_given_up(agent, alice, default_policies, settings):
    assert settings.COUNTERSIGN_WEBHOOK_MAX_AGE_SECONDS == 24 * 3600  # the default
    with webhook_receiver(script=[500] * 200) as receiver:
        request = submit(agent, callback_url=receiver.url)
        to_approved(agent, request, alice)
        delivery = WebhookDelivery.objects.get(request=request)
        attempt_each_retry_when_due(delivery, tries=200)

    attempts = list(WebhookAttempt.objects.filter(delivery=delivery))
    assert delivery.state == WebhookDelivery.State.FAILED
    assert len(attempts) == delivery.attempts == len(receiver.received)
    assert len(attempts) > 24  # capped at an hour apart, a day holds at least 24 attempts
    last_try = attempts[-1].attempted_at - delivery.created_at
    assert timedelta(hours=23) < last_try <= timedelta(hours=24)
    gaps = [(b.attempted_at - a.attempted_at).total_seconds() for a, b in itertools.pairwise(attempts)]
    assert gaps[0] < gaps[4] < gaps[8]  # backing off
    assert max(gaps) <= 3600 + 5


# --- each attempt recorded (status code, latency, error); admins see and re-send ---------------


@contextmanager
def slow_receiver(*, delay: float, status: int) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            time.sleep(delay)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


def test_an_attempt_records_status_code_latency_and_error(agent, alice, default_policies):
    with slow_receiver(delay=0.3, status=503) as url:
        request = submit(agent, callback_url=url)
        to_approved(agent, request, alice)
        delivery = WebhookDelivery.objects.get(request=request)

        webhook_delivery_attempt(delivery_id=delivery.pk)

    attempt = WebhookAttempt.objects.get(delivery=delivery)
    assert attempt.status_code == 503
    assert attempt.error == "HTTP 503"
    assert 300 <= attempt.latency_ms < 5000


def test_an_unreachable_receiver_is_recorded_with_no_status_and_the_connection_error(agent, alice, default_policies):
    request = submit(agent, callback_url=f"http://127.0.0.1:{free_port()}/hook")  # nothing listens there
    to_approved(agent, request, alice)
    delivery = WebhookDelivery.objects.get(request=request)

    webhook_delivery_attempt(delivery_id=delivery.pk)

    attempt = WebhookAttempt.objects.get(delivery=delivery)
    assert attempt.status_code is None
    assert attempt.error.startswith("ConnectError")
    delivery.refresh_from_db()
    assert (delivery.state, delivery.last_status_code, delivery.last_error) == ("pending", None, attempt.error)


def test_admin_sees_each_attempt_of_a_delivery(agent, alice, admin_user, default_policies):
    with slow_receiver(delay=0, status=502) as url:
        request = submit(agent, callback_url=url)
        to_approved(agent, request, alice)
        delivery = WebhookDelivery.objects.get(request=request)
        webhook_delivery_attempt(delivery_id=delivery.pk)
    browser = Client()
    assert browser.login(username=admin_user.username, password=PASSWORD)

    listing = browser.get("/admin/approvals/webhookdelivery/")
    page = browser.get(f"/admin/approvals/webhookdelivery/{delivery.pk}/change/")

    assert listing.status_code == page.status_code == 200
    assert "action.approved" in listing.text
    attempt = WebhookAttempt.objects.get(delivery=delivery)
    assert "HTTP 502" in page.text
    assert f">{attempt.latency_ms}<" in page.text.replace("\n", "").replace(" ", "")


def test_admin_resends_a_delivery_that_was_given_up_and_it_arrives(
    agent, alice, admin_user, default_policies, settings
):
    settings.COUNTERSIGN_WEBHOOK_MAX_AGE_SECONDS = 60
    with webhook_receiver(script=[500] * 20) as receiver:
        request = submit(agent, callback_url=receiver.url)
        to_approved(agent, request, alice)
        delivery = WebhookDelivery.objects.get(request=request)
        attempt_each_retry_when_due(delivery, tries=20)
        assert delivery.state == WebhookDelivery.State.FAILED
        failed_attempts = delivery.attempts
        receiver.script.clear()  # the receiver is fixed
        browser = Client()
        assert browser.login(username=admin_user.username, password=PASSWORD)

        browser.post("/admin/approvals/webhookdelivery/", {"action": "resend", "_selected_action": [str(delivery.pk)]})
        assert deliver_due_webhooks() == 1

    delivery.refresh_from_db()
    assert delivery.state == WebhookDelivery.State.DELIVERED
    assert delivery.attempts == failed_attempts + 1
    assert Webhook(agent.webhook_secret).verify(receiver.received[-1].body, receiver.received[-1].headers)


# --- SSRF: what a list of literal private addresses misses --------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://[::ffff:127.0.0.1]/hook",  # IPv4-mapped IPv6
        "http://[::ffff:10.0.0.1]/hook",
        "http://[::ffff:169.254.169.254]/latest/meta-data/",
        "http://[::ffff:0:7f00:1]/hook",  # IPv4-translated
        "http://[::127.0.0.1]/hook",  # IPv4-compatible (deprecated)
        "http://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 of 169.254.169.254
        "http://[64:ff9b::7f00:1]/hook",  # NAT64 of 127.0.0.1
        "http://[2002:a00:1::1]/hook",  # 6to4 of 10.0.0.1
        "http://[fe80::1]/hook",  # link-local
        "http://[fd00::1]/hook",  # unique local
        "http://[::]/hook",
        "http://0.0.0.0/hook",
        "http://0/hook",
        "http://127.1/hook",
        "http://2130706433/hook",  # 127.0.0.1 as one decimal number
        "http://0x7f000001/hook",
        "http://100.64.0.1/hook",  # carrier-grade NAT
        "http://172.16.0.1/hook",
        "http://224.0.0.1/hook",  # multicast
        "http://metadata.localhost/hook",
    ],
)
def test_private_addresses_in_disguise_are_refused(url, settings):
    settings.COUNTERSIGN_WEBHOOK_ALLOW_PRIVATE = False

    with pytest.raises(InvalidInput) as refused:
        validate_outbound_url(url)

    assert refused.value.code == "callback_url_not_allowed"


@pytest.mark.parametrize(
    "url", ["gopher://127.0.0.1:6379/_FLUSHALL", "javascript:alert(1)", "http:///no-host", "//example.com/hook"]
)
def test_non_http_urls_are_refused_even_when_private_addresses_are_allowed(url, settings):
    settings.COUNTERSIGN_WEBHOOK_ALLOW_PRIVATE = True

    with pytest.raises(InvalidInput) as refused:
        validate_outbound_url(url)

    assert refused.value.code == "invalid_callback_url"


def resolving_to(*addresses: str) -> Callable[..., list]:
    def getaddrinfo(host, port, *args, **kwargs):
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses
        ]

    return getaddrinfo


@pytest.mark.parametrize(
    "addresses",
    [("::ffff:127.0.0.1",), ("169.254.169.254",), ("fd12:3456::1",), ("93.184.215.14", "10.0.0.7")],
    ids=["ipv6-mapped-loopback", "cloud-metadata", "ipv6-unique-local", "one-of-several-is-private"],
)
def test_a_dns_name_resolving_to_a_private_address_is_refused(addresses, settings, monkeypatch):
    settings.COUNTERSIGN_WEBHOOK_ALLOW_PRIVATE = False
    monkeypatch.setattr(socket, "getaddrinfo", resolving_to(*addresses))

    with pytest.raises(InvalidInput) as refused:
        validate_outbound_url("https://hooks.customer.example/countersign")

    assert refused.value.code == "callback_url_not_allowed"


def test_public_ipv6_and_nat64_of_a_public_address_are_accepted(settings):
    settings.COUNTERSIGN_WEBHOOK_ALLOW_PRIVATE = False

    assert validate_outbound_url("https://[2606:4700::1111]/hook")
    assert validate_outbound_url("https://[64:ff9b::808:808]/hook")


def test_private_addresses_are_accepted_when_settings_allow_them(settings):
    settings.COUNTERSIGN_WEBHOOK_ALLOW_PRIVATE = True

    assert validate_outbound_url("http://127.0.0.1:8080/hook") == "http://127.0.0.1:8080/hook"


def test_api_refuses_a_callback_host_that_resolves_to_a_private_address(api, settings, monkeypatch, default_policies):
    settings.COUNTERSIGN_WEBHOOK_ALLOW_PRIVATE = False
    monkeypatch.setattr(socket, "getaddrinfo", resolving_to("10.0.0.7"))

    response = api.post(
        "/api/v1/actions/",
        data=json.dumps(submission_body(callback_url="https://hooks.customer.example/countersign")),
        content_type="application/json",
    )

    assert response.status_code == 422
    assert "callback_url" in response.json()["error"]["details"]["fields"]
    assert not ActionRequest.objects.exists()


def test_create_agent_refuses_a_private_default_callback_url(settings):
    settings.COUNTERSIGN_WEBHOOK_ALLOW_PRIVATE = False

    with pytest.raises(CommandError, match="private"):
        call_command(
            "create_agent",
            "metadata-bot",
            "--callback-url",
            "http://169.254.169.254/latest/meta-data/",
            stdout=StringIO(),
            stderr=StringIO(),
        )

    assert not Agent.objects.filter(name="metadata-bot").exists()


def test_create_agent_keeps_an_allowed_default_callback_url(settings):
    settings.COUNTERSIGN_WEBHOOK_ALLOW_PRIVATE = True

    call_command("create_agent", "local-bot", "--callback-url", "http://127.0.0.1:9/h", stdout=StringIO())

    assert Agent.objects.get(name="local-bot").default_callback_url == "http://127.0.0.1:9/h"


# --- every refused execution report is a violation in the audit trail ---------------------------


def lapsed_by_the_sweep(agent, reviewer):
    request = submit(agent)
    action_request_decide(request_id=request.pk, reviewer=reviewer, approve=True)
    request.refresh_from_db()
    token, digest = approval_token(request), final_params_hash(request)
    ActionRequest.objects.filter(pk=request.pk).update(approval_expires_at=timezone.now() - timedelta(seconds=1))
    action_requests_expire_due()
    assert ActionRequest.objects.get(pk=request.pk).status == Status.LAPSED
    return request, {"approval_token": token, "reported_params_hash": digest}


def expired_before_a_decision(agent, reviewer):
    request = submit(agent)
    to_expired(agent, request, reviewer)
    return request, {}


def rejected(agent, reviewer):
    request = submit(agent)
    to_rejected(agent, request, reviewer)
    return request, {}


def cancelled(agent, reviewer):
    request = submit(agent)
    to_cancelled(agent, request, reviewer)
    return request, {}


def blocked(agent, reviewer):
    request = submit(agent, action_type="legal_advice")
    assert request.status == Status.BLOCKED
    return request, {}


def allowed_and_already_reported(agent, reviewer):
    request = submit(agent, action_type="search_web")
    assert request.status == Status.ALLOWED
    execute(agent, request)
    return request, {"approval_token": None, "reported_params_hash": None}


def approved_and_already_reported(agent, reviewer):
    request = submit(agent)
    to_executed(agent, request, reviewer)
    request.refresh_from_db()
    return request, {"reported_params_hash": final_params_hash(request)}


def approved_but_other_params_ran(agent, reviewer):
    request = submit(agent)
    to_approved(agent, request, reviewer)
    return request, {"reported_params_hash": "0" * 64}


@pytest.mark.parametrize(
    ("arrange", "code", "status_after"),
    [
        (lapsed_by_the_sweep, "approval_expired", "lapsed"),
        (expired_before_a_decision, "not_approved", "expired"),
        (rejected, "not_approved", "rejected"),
        (cancelled, "not_approved", "cancelled"),
        (blocked, "not_approved", "blocked"),
        (allowed_and_already_reported, "already_reported", "executed"),
        (approved_and_already_reported, "already_reported", "executed"),
        (approved_but_other_params_ran, "params_mismatch", "approved"),
    ],
    ids=lambda value: value.__name__ if callable(value) else None,
)
def test_every_refused_execution_report_is_kept_as_a_violation(arrange, code, status_after, agent, alice):
    request, report = arrange(agent, alice)
    request.refresh_from_db()
    executed_at = request.executed_at

    with pytest.raises(Exception) as refused:
        execute(agent, request, outcome="failed", **report)

    assert getattr(refused.value, "code", None) == code
    request.refresh_from_db()
    assert (request.status, request.executed_at) == (status_after, executed_at)
    [violation] = AuditEvent.objects.filter(request=request, kind="violation")
    assert violation.data["violation"] == code
    assert violation.data["reported_outcome"] == "failed"
    assert (violation.actor_kind, violation.actor_label) == ("agent", agent.name)


@pytest.mark.django_db(transaction=True)
def test_eight_reports_of_one_approval_at_once_record_exactly_one_execution(agent, alice):
    request = submit(agent)
    to_approved(agent, request, alice)
    request.refresh_from_db()
    report = {"approval_token": approval_token(request), "reported_params_hash": final_params_hash(request)}
    results = run_at_once(
        lambda _: action_request_report_execution(agent=agent, request_id=request.pk, outcome="succeeded", **report)
    )

    outcomes = ["executed" if kind == "ok" else getattr(exc, "code", repr(exc)) for kind, exc in results]
    assert sorted(outcomes) == ["already_reported"] * 7 + ["executed"]
    assert AuditEvent.objects.filter(request=request, kind="executed").count() == 1
    assert AuditEvent.objects.filter(request=request, kind="violation").count() == 7


def rebinding(first: str, then: str) -> Callable[..., list]:
    """A DNS name that answers a public address once, then a private one (DNS rebinding)."""
    answers = [first]
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host != "hooks.customer.example":  # an address literal, as the HTTP client dials it
            return real_getaddrinfo(host, port, *args, **kwargs)
        address = answers.pop() if answers else then
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    return getaddrinfo


def test_a_name_that_rebinds_to_loopback_after_the_check_is_not_posted_to(agent, alice, settings, monkeypatch):
    with webhook_receiver() as receiver:
        port = receiver.url.split(":")[2].split("/")[0]
        request = submit(agent, callback_url=f"http://hooks.customer.example:{port}/hook")
        to_approved(agent, request, alice)
        delivery = WebhookDelivery.objects.get(request=request)
        settings.COUNTERSIGN_WEBHOOK_ALLOW_PRIVATE = False
        settings.COUNTERSIGN_WEBHOOK_TIMEOUT_SECONDS = 1
        # Checked against a public address, then resolved again by the HTTP client: to loopback.
        monkeypatch.setattr(socket, "getaddrinfo", rebinding("93.184.215.14", "127.0.0.1"))

        webhook_delivery_attempt(delivery_id=delivery.pk)

    assert receiver.received == []
    assert WebhookAttempt.objects.get(delivery=delivery).status_code is None


def test_a_checked_name_is_posted_to_the_address_that_was_checked_with_its_own_host_header(
    agent, alice, settings, monkeypatch
):
    with webhook_receiver() as receiver:
        port = receiver.url.split(":")[2].split("/")[0]
        request = submit(agent, callback_url=f"http://hooks.customer.example:{port}/hook")
        to_approved(agent, request, alice)
        delivery = WebhookDelivery.objects.get(request=request)
        # Private addresses allowed, so the check passes; only one resolution may happen.
        monkeypatch.setattr(socket, "getaddrinfo", rebinding("127.0.0.1", "192.0.2.1"))

        webhook_delivery_attempt(delivery_id=delivery.pk)

    [hit] = receiver.received
    assert hit.headers["host"] == f"hooks.customer.example:{port}"
    assert Webhook(agent.webhook_secret).verify(hit.body, hit.headers)["type"] == "action.approved"


@contextmanager
def https_receiver(tmp_path, *, certificate_for: str) -> Iterator[tuple[int, list[dict[str, str]], ssl.SSLContext]]:
    """An HTTPS server on loopback with a self-signed certificate for ``certificate_for``, and a context trusting it."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    names = ["-subj", f"/CN={certificate_for}", "-addext", f"subjectAltName=DNS:{certificate_for}"]
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            key,
            "-out",
            cert,
            *names,
        ],
        check=True,
        capture_output=True,
    )
    received: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.append({k.lower(): v for k, v in self.headers.items()})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)
    server.socket = server_side.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    trusting = ssl.create_default_context(cafile=str(cert))
    trusting.verify_flags &= ~ssl.VERIFY_X509_STRICT  # a bare self-signed test certificate
    try:
        yield server.server_address[1], received, trusting
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("certificate_for", "delivered"), [("hooks.customer.example", True), ("other.example", False)])
def test_https_to_the_checked_address_still_verifies_the_certificate_against_the_name(
    certificate_for, delivered, agent, alice, monkeypatch, tmp_path
):
    with https_receiver(tmp_path, certificate_for=certificate_for) as (port, received, trusting):
        request = submit(agent, callback_url=f"https://hooks.customer.example:{port}/hook")
        to_approved(agent, request, alice)
        delivery = WebhookDelivery.objects.get(request=request)
        monkeypatch.setattr(socket, "getaddrinfo", rebinding("127.0.0.1", "192.0.2.1"))

        with httpx.Client(verify=trusting, timeout=5) as client:
            webhook_delivery_attempt(delivery_id=delivery.pk, client=client)

    attempt = WebhookAttempt.objects.get(delivery=delivery)
    if delivered:
        assert attempt.status_code == 204
        assert [hit["host"] for hit in received] == [f"hooks.customer.example:{port}"]
    else:
        assert attempt.status_code is None
        assert "CERTIFICATE_VERIFY_FAILED" in attempt.error
        assert received == []
