"""Password guessing is refused: per username and per client address, on the reviewers' and the admin's sign-in."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
import time_machine
from axes.models import AccessAttempt, AccessFailureLog
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from tests.helpers import PASSWORD

LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/?next=/admin/"
WRONG = "not the password"


def sign_in(username: str, password: str, *, address: str = "10.0.0.1", url: str = LOGIN):
    """One sign-in attempt from a fresh browser at ``address``; returns (client, response)."""
    browser = Client(REMOTE_ADDR=address)
    response = browser.post(url, {"username": username, "password": password})
    return browser, response


def signed_in(browser: Client) -> bool:
    return "_auth_user_id" in browser.session


def fail(username: str, times: int, **kwargs) -> None:
    for _ in range(times):
        _, response = sign_in(username, WRONG, **kwargs)
        assert response.status_code in {200, 429}


def test_the_right_password_works_before_any_failure(alice):
    browser, response = sign_in("alice", PASSWORD)

    assert response.status_code == 302
    assert signed_in(browser)


def test_four_failures_do_not_stop_the_right_password(alice):
    fail("alice", 4)

    browser, response = sign_in("alice", PASSWORD)

    assert response.status_code == 302
    assert signed_in(browser)


def test_after_five_failures_the_right_password_is_refused_with_the_lockout_page(alice):
    fail("alice", 5)

    browser, response = sign_in("alice", PASSWORD)

    assert response.status_code == 429
    assert not signed_in(browser)
    assert "Sign-in paused" in response.text
    assert 0 < int(response["Retry-After"]) <= 900
    assert 'id="id_password"' not in response.text


def test_the_fifth_failure_already_answers_with_the_lockout_page(alice):
    fail("alice", 4)

    _, response = sign_in("alice", WRONG)

    assert response.status_code == 429
    assert "Sign-in paused" in response.text


def test_the_lockout_page_says_when_to_try_again(alice):
    start = timezone.now().replace(microsecond=0)
    with time_machine.travel(start, tick=False):
        fail("alice", 5)
        _, response = sign_in("alice", PASSWORD)

    ends = start + timedelta(seconds=900)
    assert ends.strftime("%H:%M:%S") in response.text
    assert response["Retry-After"] == "900"


def test_failures_from_one_address_lock_that_address_for_every_username(alice):
    for n in range(5):
        fail(f"guess-{n}", 1, address="10.0.0.7")

    _, from_there = sign_in("alice", PASSWORD, address="10.0.0.7")
    elsewhere, from_elsewhere = sign_in("alice", PASSWORD, address="10.0.0.8")

    assert from_there.status_code == 429
    assert from_elsewhere.status_code == 302
    assert signed_in(elsewhere)


def test_failures_for_one_username_lock_it_from_every_address(alice):
    for n in range(5):
        fail("alice", 1, address=f"10.0.1.{n}")

    browser, response = sign_in("alice", PASSWORD, address="10.0.2.1")

    assert response.status_code == 429
    assert not signed_in(browser)


def test_a_forged_forwarded_for_header_does_not_escape_the_address_lockout(alice):
    for n in range(5):
        browser = Client(REMOTE_ADDR="10.0.0.9", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
        browser.post(LOGIN, {"username": f"guess-{n}", "password": WRONG})

    browser = Client(REMOTE_ADDR="10.0.0.9", HTTP_X_FORWARDED_FOR="192.0.2.200")
    response = browser.post(LOGIN, {"username": "alice", "password": PASSWORD})

    assert response.status_code == 429


def test_behind_a_trusted_proxy_the_forwarded_address_is_the_one_locked(alice, settings):
    settings.COUNTERSIGN_TRUSTED_PROXY_COUNT = 1
    for n in range(5):
        browser = Client(REMOTE_ADDR="10.9.9.9", HTTP_X_FORWARDED_FOR="192.0.2.66")
        browser.post(LOGIN, {"username": f"guess-{n}", "password": WRONG})

    _, attacker = sign_in("alice", PASSWORD, address="10.9.9.9")
    attacker_client = Client(REMOTE_ADDR="10.9.9.9", HTTP_X_FORWARDED_FOR="192.0.2.66")
    refused = attacker_client.post(LOGIN, {"username": "alice", "password": PASSWORD})
    other = Client(REMOTE_ADDR="10.9.9.9", HTTP_X_FORWARDED_FOR="192.0.2.77")
    allowed = other.post(LOGIN, {"username": "alice", "password": PASSWORD})

    assert refused.status_code == 429
    assert allowed.status_code == 302
    assert attacker.status_code == 302  # no header: the proxy's own address, not locked
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"192.0.2.66"}


def test_the_admin_sign_in_is_protected_too(admin_user):
    admin_user.set_password(PASSWORD)
    admin_user.save()
    fail("admin", 5, url=ADMIN_LOGIN)

    browser, response = sign_in("admin", PASSWORD, url=ADMIN_LOGIN)

    assert response.status_code == 429
    assert not signed_in(browser)
    assert browser.get("/admin/").status_code == 302


def test_failures_at_the_admin_and_the_login_page_count_together(alice):
    fail("alice", 3, url=ADMIN_LOGIN)
    fail("alice", 2)

    _, response = sign_in("alice", PASSWORD)

    assert response.status_code == 429


def test_the_lockout_ends_after_the_lockout_period(alice):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        fail("alice", 5)
    with time_machine.travel(start + timedelta(seconds=899), tick=False):
        _, still_locked = sign_in("alice", PASSWORD)
    with time_machine.travel(start + timedelta(seconds=901), tick=False):
        browser, after = sign_in("alice", PASSWORD)

    assert still_locked.status_code == 429
    assert after.status_code == 302
    assert signed_in(browser)


def test_refused_attempts_during_a_lockout_do_not_extend_it(alice):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        fail("alice", 5)
    with time_machine.travel(start + timedelta(seconds=600), tick=False):
        fail("alice", 3)
    with time_machine.travel(start + timedelta(seconds=901), tick=False):
        _, after = sign_in("alice", PASSWORD)

    assert after.status_code == 302


def test_the_lockout_period_and_limit_follow_the_settings(alice, settings):
    settings.AXES_FAILURE_LIMIT = settings.COUNTERSIGN_LOGIN_FAILURE_LIMIT = 2
    settings.AXES_COOLOFF_TIME = timedelta(seconds=60)
    settings.COUNTERSIGN_LOGIN_LOCKOUT_SECONDS = 60
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        fail("alice", 2)
        _, locked = sign_in("alice", PASSWORD)
    with time_machine.travel(start + timedelta(seconds=61), tick=False):
        _, after = sign_in("alice", PASSWORD)

    assert locked.status_code == 429
    assert after.status_code == 302


def test_an_admin_sees_the_lockout_in_the_admin_and_lifts_it(alice, admin_user):
    fail("alice", 5)
    staff = Client()
    staff.force_login(admin_user)

    listing = staff.get("/admin/axes/accessattempt/")
    attempt = AccessAttempt.objects.get(username="alice")
    deleted = staff.post(
        "/admin/axes/accessattempt/",
        {"action": "delete_selected", "_selected_action": [str(attempt.pk)], "post": "yes"},
    )
    browser, response = sign_in("alice", PASSWORD)

    assert listing.status_code == 200
    assert "alice" in listing.text
    assert deleted.status_code == 302
    assert not AccessAttempt.objects.exists()
    assert response.status_code == 302
    assert signed_in(browser)


def test_the_failure_log_keeps_each_failed_attempt_for_the_admin(alice, admin_user):
    fail("alice", 5)
    staff = Client()
    staff.force_login(admin_user)

    page = staff.get("/admin/axes/accessfailurelog/")

    assert page.status_code == 200
    assert AccessFailureLog.objects.filter(username="alice").count() == 5
    assert AccessFailureLog.objects.filter(username="alice", locked_out=True).count() == 1


def test_a_reviewer_cannot_lift_lockouts_in_the_admin(alice, bob):
    fail("alice", 5)
    browser = Client()
    browser.force_login(bob)
    attempt = AccessAttempt.objects.get(username="alice")

    browser.post(
        "/admin/axes/accessattempt/",
        {"action": "delete_selected", "_selected_action": [str(attempt.pk)], "post": "yes"},
    )

    assert AccessAttempt.objects.filter(pk=attempt.pk).exists()


def test_axes_reset_username_lifts_a_username_lockout(alice):
    for n in range(5):
        fail("alice", 1, address=f"10.0.3.{n}")

    call_command("axes_reset_username", "alice")
    _, response = sign_in("alice", PASSWORD)

    assert response.status_code == 302


def test_axes_reset_ip_lifts_an_address_lockout(alice):
    for n in range(5):
        fail(f"guess-{n}", 1, address="10.0.0.5")

    call_command("axes_reset_ip", "10.0.0.5")
    _, response = sign_in("alice", PASSWORD, address="10.0.0.5")

    assert response.status_code == 302


def test_a_lockout_is_logged_with_username_and_address(alice, caplog):
    fail("alice", 4, address="10.0.0.42")
    with caplog.at_level(logging.WARNING, logger="countersign.security"):
        fail("alice", 1, address="10.0.0.42")

    lockouts = [record for record in caplog.records if record.name == "countersign.security"]
    assert len(lockouts) == 1
    assert lockouts[0].levelno == logging.WARNING
    assert "'alice'" in lockouts[0].getMessage()
    assert "10.0.0.42" in lockouts[0].getMessage()


def test_four_failures_are_not_logged_as_a_lockout(alice, caplog):
    with caplog.at_level(logging.WARNING, logger="countersign.security"):
        fail("alice", 4)

    assert not [record for record in caplog.records if record.name == "countersign.security"]


def test_a_test_client_login_is_counted_like_a_real_sign_in(alice):
    browser = Client()
    for _ in range(5):
        assert not browser.login(username="alice", password=WRONG)

    assert not browser.login(username="alice", password=PASSWORD)


@pytest.mark.parametrize("username", ["x" * 5000, "nul\x00byte", "<script>alert(1)</script>"])
def test_hostile_usernames_are_refused_without_an_error(alice, username):
    for _ in range(6):
        _, response = sign_in(username, WRONG)
        assert response.status_code in {200, 429}
