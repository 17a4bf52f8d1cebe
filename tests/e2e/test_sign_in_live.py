"""Sign-in through the real ASGI server (uvicorn): the async middleware paths of the lockout and the second factor."""

from __future__ import annotations

import re

import httpx
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from reviewers.services import reviewer_create
from tests.helpers import PASSWORD


def csrf_post(browser: httpx.Client, live_url: str, path: str, data: dict) -> httpx.Response:
    form = browser.get(path)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    return browser.post(path, data={**data, "csrfmiddlewaretoken": token}, headers={"Referer": f"{live_url}{path}"})


def attempt(live_url: str, username: str, password: str) -> httpx.Response:
    with httpx.Client(base_url=live_url, timeout=10) as browser:
        return csrf_post(browser, live_url, "/accounts/login/", {"username": username, "password": password})


def test_the_live_server_refuses_the_right_password_after_five_failures(live_url, transactional_db):
    reviewer_create(username="alice", password=PASSWORD)
    failures = [attempt(live_url, "alice", "wrong") for _ in range(5)]

    refused = attempt(live_url, "alice", PASSWORD)

    assert [response.status_code for response in failures] == [200, 200, 200, 200, 429]
    assert refused.status_code == 429
    assert "Sign-in paused" in refused.text
    assert "sessionid" not in refused.cookies
    assert int(refused.headers["Retry-After"]) > 0


def test_the_live_server_asks_for_the_code_after_the_password(live_url, transactional_db):
    alice = reviewer_create(username="alice", password=PASSWORD)
    device = TOTPDevice.objects.create(user=alice, name="app", confirmed=True)
    with httpx.Client(base_url=live_url, timeout=10) as browser:
        signed_in = csrf_post(browser, live_url, "/accounts/login/", {"username": "alice", "password": PASSWORD})
        held = browser.get("/queue/")
        api = browser.get("/api/v1/policies/")
        current = f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"
        verified = csrf_post(browser, live_url, "/accounts/two-factor/verify/", {"code": current, "next": "/queue/"})
        queue = browser.get("/queue/")

    assert signed_in.status_code == 302
    assert held.status_code == 302
    assert held.headers["Location"].startswith("/accounts/two-factor/verify/")
    assert api.status_code == 401
    assert verified.status_code == 302
    assert queue.status_code == 200
