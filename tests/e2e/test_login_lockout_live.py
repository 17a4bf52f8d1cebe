"""The lockout through the real ASGI server (uvicorn): axes' async middleware path answers with our page."""

from __future__ import annotations

import re

import httpx

from reviewers.services import reviewer_create
from tests.helpers import PASSWORD


def attempt(live_url: str, username: str, password: str) -> httpx.Response:
    with httpx.Client(base_url=live_url, timeout=10) as browser:
        form = browser.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
        return browser.post(
            "/accounts/login/",
            data={"username": username, "password": password, "csrfmiddlewaretoken": token},
            headers={"Referer": f"{live_url}/accounts/login/"},
        )


def test_the_live_server_refuses_the_right_password_after_five_failures(live_url, transactional_db):
    reviewer_create(username="alice", password=PASSWORD)
    failures = [attempt(live_url, "alice", "wrong") for _ in range(5)]

    refused = attempt(live_url, "alice", PASSWORD)

    assert [response.status_code for response in failures] == [200, 200, 200, 200, 429]
    assert refused.status_code == 429
    assert "Sign-in paused" in refused.text
    assert "sessionid" not in refused.cookies
    assert int(refused.headers["Retry-After"]) > 0
