"""Callback URLs that reach private addresses are refused: the disguises a list of literal addresses misses,
names that resolve (or later rebind) to private addresses, and HTTPS still verified against the name."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from typing import Any

import httpx
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from standardwebhooks.webhooks import Webhook

from approvals.models import ActionRequest, Agent, WebhookAttempt, WebhookDelivery
from approvals.webhooks import webhook_delivery_attempt
from core.errors import InvalidInput
from core.netguard import validate_outbound_url
from tests.helpers import submission_body, submit_as, to_approved
from tests.webhook_receiver import webhook_receiver

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("default_policies")]


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


# --- DNS rebinding, and HTTPS to the checked address ---------------------------------------------


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
        request = submit_as(agent, callback_url=f"http://hooks.customer.example:{port}/hook")
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
        request = submit_as(agent, callback_url=f"http://hooks.customer.example:{port}/hook")
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
        request = submit_as(agent, callback_url=f"https://hooks.customer.example:{port}/hook")
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
