"""Single sign-on in Chromium against a real OpenID Connect provider started for the test.

The provider is django-oauth-toolkit in OIDC mode (tests/oidc_provider), in its own process with
its own database and RSA key; nothing of the protocol is mocked. The reviewer signs in at the
provider and lands on the queue with the reviewer groups its groups claim maps to.

Run with: DJANGO_ALLOW_ASYNC_UNSAFE=true .venv/bin/python -m pytest -m browser -p no:asyncio FILE
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth.models import Group, User

from reviewers.services import reviewer_group_ensure
from tests.oidc_provider.serve import CLIENT_ID, CLIENT_SECRET, EMAIL, PASSWORD, USERNAME

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def oidc_provider(live_url: str) -> Iterator[str]:
    """Start the provider once for this module, with the gateway's callback as the client's redirect URI."""
    directory = Path(tempfile.mkdtemp(prefix="countersign-oidc-"))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (directory / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    port = _free_port()
    env = {
        **os.environ,
        "OIDC_PROVIDER_DB": str(directory / "provider.sqlite3"),
        "OIDC_PROVIDER_KEY": str(directory / "key.pem"),
        "DJANGO_SETTINGS_MODULE": "tests.oidc_provider.settings",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.oidc_provider.serve", str(port), f"{live_url}/oidc/callback/"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline() if process.stdout else ""
        assert line.strip() == "ready", f"the OIDC provider did not start (exit {process.poll()})"
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def sso(settings, oidc_provider):
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = f"{oidc_provider}/o/authorize/"
    settings.OIDC_OP_TOKEN_ENDPOINT = f"{oidc_provider}/o/token/"
    settings.OIDC_OP_USER_ENDPOINT = f"{oidc_provider}/o/userinfo/"
    settings.OIDC_OP_JWKS_ENDPOINT = f"{oidc_provider}/o/.well-known/jwks.json"
    settings.OIDC_RP_SCOPES = "openid email profile groups"
    settings.COUNTERSIGN_OIDC_GROUP_MAP = {"idp-finance": "finance", "idp-ops": "ops"}
    return oidc_provider


def test_a_reviewer_signs_in_through_the_provider_and_lands_on_the_queue_with_mapped_groups(page, sso):
    # Ivy has an account already: in "ops" (mapped, but the provider no longer lists it) and
    # "legal" (not mapped: SSO leaves it alone).
    ivy = User.objects.create_user("ivy", email=EMAIL)
    ivy.groups.add(reviewer_group_ensure(name="ops"), reviewer_group_ensure(name="legal"))

    page.goto("/accounts/login/?next=/queue/")
    page.click("#sso-sign-in")
    page.wait_for_url(f"{sso}/accounts/login/**")
    page.fill("#idp-username", USERNAME)
    page.fill("#idp-password", PASSWORD)
    page.click("#idp-submit")

    page.wait_for_url("**/queue/")
    page.wait_for_selector("body[data-live=on]")
    ivy.refresh_from_db()
    assert set(ivy.groups.values_list("name", flat=True)) == {"finance", "legal"}
    assert not ivy.is_staff
    assert Group.objects.get(name="finance").permissions.filter(codename="review_actionrequest").exists()


def test_a_first_sign_in_creates_the_reviewer(page, sso):
    page.goto("/accounts/login/?next=/queue/")
    page.click("#sso-sign-in")
    page.fill("#idp-username", USERNAME)
    page.fill("#idp-password", PASSWORD)
    page.click("#idp-submit")

    page.wait_for_url("**/queue/")
    page.wait_for_selector("body[data-live=on]")  # the queue itself, not a refusal: ivy reviews for finance
    user = User.objects.get(email=EMAIL)
    assert user.username == USERNAME
    assert set(user.groups.values_list("name", flat=True)) == {"finance"}
    assert user.sso_identity.subject  # tied to the provider's sub: found by it from now on


def sign_in_at_the_provider(page) -> None:
    page.goto("/accounts/login/?next=/queue/")
    page.click("#sso-sign-in")
    page.fill("#idp-username", USERNAME)
    page.fill("#idp-password", PASSWORD)
    page.click("#idp-submit")


def test_a_staff_account_with_the_providers_email_is_not_signed_into(page, sso):
    admin = User.objects.create_user("root", email=EMAIL, is_staff=True)

    sign_in_at_the_provider(page)

    page.wait_for_url("**/accounts/login/?sso=failed")
    assert page.get_by_role("alert").inner_text().startswith("Single sign-on did not complete")
    assert page.goto("/queue/").url.split("?")[0].endswith("/accounts/login/")
    assert not User.objects.filter(sso_identity__isnull=False).exists()
    admin.refresh_from_db()
    assert admin.is_staff and not admin.groups.exists()
