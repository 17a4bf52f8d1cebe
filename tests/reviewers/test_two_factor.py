"""The optional second factor: enrolment, the code after the password, throttling, removal, REQUIRE_2FA, the admin."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
import time_machine
from django.contrib import admin
from django.test import Client, RequestFactory
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from config.admin_site import CountersignAdminSite
from tests.helpers import PASSWORD

VERIFY = "/accounts/two-factor/verify/"
SETTINGS = "/accounts/two-factor/"
POLICIES_API = "/api/v1/policies/"


def code(device: TOTPDevice) -> str:
    """The code the user's authenticator app shows right now (RFC 6238, from the device's key)."""
    return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):0{device.digits}d}"


def wrong(device: TOTPDevice) -> str:
    return f"{(int(code(device)) + 1) % 10**device.digits:0{device.digits}d}"


@pytest.fixture
def clock():
    """Frozen time, moved on explicitly: each code is accepted once, so tests step to the next 30 s window."""
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


def enrolled(user) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)


def password_sign_in(username: str, next_url: str = "/queue/") -> Client:
    browser = Client()
    response = browser.post(f"/accounts/login/?next={next_url}", {"username": username, "password": PASSWORD})
    assert response.status_code == 302
    return browser


def test_a_reviewer_without_a_device_signs_in_with_the_password_alone(alice):
    browser = password_sign_in("alice")

    assert browser.get("/queue/").status_code == 200


def test_enrolment_shows_the_secret_the_otpauth_uri_and_a_qr_code(alice):
    browser = Client()
    browser.force_login(alice)

    browser.post(SETTINGS, {"action": "start"})
    page = browser.get(SETTINGS)

    device = TOTPDevice.objects.get(user=alice)
    assert not device.confirmed
    assert "otpauth://totp/Countersign%3Aalice?secret=" in page.text
    assert 'id="totp-secret"' in page.text
    assert "<svg" in page.text
    assert "<script" not in page.text.split('<div class="qr-code">')[1].split("</div>")[0]


def test_starting_twice_keeps_one_pending_device(alice):
    browser = Client()
    browser.force_login(alice)

    browser.post(SETTINGS, {"action": "start"})
    browser.post(SETTINGS, {"action": "start"})

    assert TOTPDevice.objects.filter(user=alice).count() == 1


def test_a_first_code_confirms_the_device_and_verifies_the_session(alice, clock):
    browser = Client()
    browser.force_login(alice)
    browser.post(SETTINGS, {"action": "start"})
    device = TOTPDevice.objects.get(user=alice)

    response = browser.post(SETTINGS, {"action": "confirm", "code": code(device)})

    assert response.status_code == 302
    assert TOTPDevice.objects.get(user=alice).confirmed
    assert browser.get("/queue/").status_code == 200


def test_a_wrong_first_code_leaves_two_factor_off(alice, clock):
    browser = Client()
    browser.force_login(alice)
    browser.post(SETTINGS, {"action": "start"})
    device = TOTPDevice.objects.get(user=alice)

    response = browser.post(SETTINGS, {"action": "confirm", "code": wrong(device)})

    assert response.status_code == 400
    assert "not valid" in response.text
    assert not TOTPDevice.objects.get(user=alice).confirmed


def test_with_a_device_the_password_alone_reaches_no_page(alice):
    enrolled(alice)
    browser = password_sign_in("alice")

    queue = browser.get("/queue/")
    history = browser.get("/queue/history/")

    assert queue.status_code == 302
    assert queue["Location"] == f"{VERIFY}?next=%2Fqueue%2F"
    assert history.status_code == 302
    assert history["Location"].startswith(VERIFY)


def test_the_right_code_after_the_password_opens_the_queue(alice, clock):
    device = enrolled(alice)
    browser = password_sign_in("alice")

    response = browser.post(VERIFY, {"code": code(device), "next": "/queue/history/"})

    assert response.status_code == 302
    assert response["Location"] == "/queue/history/"
    assert browser.get("/queue/").status_code == 200


def test_a_wrong_code_is_refused_and_logged(alice, clock, caplog):
    device = enrolled(alice)
    browser = password_sign_in("alice")

    with caplog.at_level(logging.WARNING, logger="countersign.security"):
        response = browser.post(VERIFY, {"code": wrong(device)})

    assert response.status_code == 400
    assert browser.get("/queue/").status_code == 302
    assert any("second factor refused" in r.getMessage() and "'alice'" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("garbage", ["", "abcdef", "1" * 5000, "<script>", "\uff11\uff12\uff13\uff14\uff15\uff16"])
def test_garbage_codes_are_refused_without_an_error(alice, clock, garbage):
    enrolled(alice)
    browser = password_sign_in("alice")

    assert browser.post(VERIFY, {"code": garbage}).status_code == 400


def test_after_a_wrong_code_even_the_right_one_waits_out_the_throttle(alice, clock):
    device = enrolled(alice)
    browser = password_sign_in("alice")
    browser.post(VERIFY, {"code": wrong(device)})

    throttled = browser.post(VERIFY, {"code": code(device)})
    clock.shift(timedelta(seconds=30))
    accepted = browser.post(VERIFY, {"code": code(device)})

    assert throttled.status_code == 400
    assert "Too many wrong codes" in throttled.text
    assert accepted.status_code == 302


def test_the_throttle_doubles_with_each_wrong_code(alice, clock):
    device = enrolled(alice)
    browser = password_sign_in("alice")
    for _ in range(5):
        clock.shift(timedelta(seconds=17))  # past each wait so far, so every wrong code is checked and counted
        browser.post(VERIFY, {"code": wrong(device)})

    clock.shift(timedelta(seconds=15))  # the fifth failure asks for 16 s
    early = browser.post(VERIFY, {"code": code(device)})
    clock.shift(timedelta(seconds=30))
    later = browser.post(VERIFY, {"code": code(device)})

    assert TOTPDevice.objects.get(pk=device.pk).throttling_failure_count == 0
    assert early.status_code == 400
    assert later.status_code == 302


def test_a_code_is_accepted_only_once(alice, clock):
    device = enrolled(alice)
    first = password_sign_in("alice")
    second = password_sign_in("alice")
    used = code(device)

    assert first.post(VERIFY, {"code": used}).status_code == 302
    assert second.post(VERIFY, {"code": used}).status_code == 400


def test_removal_needs_a_current_code(alice, clock):
    device = enrolled(alice)
    browser = password_sign_in("alice")
    browser.post(VERIFY, {"code": code(device)})
    clock.shift(timedelta(seconds=30))

    refused = browser.post(SETTINGS, {"action": "remove", "code": wrong(device)})
    clock.shift(timedelta(seconds=30))
    removed = browser.post(SETTINGS, {"action": "remove", "code": code(device)})

    assert refused.status_code == 400
    assert removed.status_code == 302
    assert not TOTPDevice.objects.filter(user=alice).exists()
    assert password_sign_in("alice").get("/queue/").status_code == 200


def test_the_settings_page_of_an_unverified_session_asks_for_the_code_first(alice):
    enrolled(alice)
    browser = password_sign_in("alice")

    response = browser.post(SETTINGS, {"action": "remove", "code": "000000"})

    assert response.status_code == 302
    assert response["Location"].startswith(VERIFY)
    assert TOTPDevice.objects.filter(user=alice).exists()


def test_logout_works_before_the_code(alice):
    enrolled(alice)
    browser = password_sign_in("alice")

    response = browser.post("/accounts/logout/")

    assert response.status_code == 302
    assert "_auth_user_id" not in browser.session


def test_require_2fa_sends_staff_without_a_device_to_enrolment(admin_user, settings):
    settings.COUNTERSIGN_REQUIRE_2FA = True
    browser = Client()
    browser.force_login(admin_user)

    admin_page = browser.get("/admin/")
    simulate = browser.get("/policies/simulate/")
    enrolment = browser.get(SETTINGS)

    assert admin_page.status_code == 302
    assert admin_page["Location"] == f"{SETTINGS}?next=%2Fadmin%2F"
    assert simulate.status_code == 302
    assert simulate["Location"].startswith(SETTINGS)
    assert enrolment.status_code == 200
    assert "Staff accounts need two-factor" in enrolment.text


def test_require_2fa_staff_reach_the_admin_once_enrolled(admin_user, settings, clock):
    settings.COUNTERSIGN_REQUIRE_2FA = True
    browser = Client()
    browser.force_login(admin_user)
    browser.post(SETTINGS, {"action": "start"})
    device = TOTPDevice.objects.get(user=admin_user)

    browser.post(SETTINGS, {"action": "confirm", "code": code(device)})

    assert browser.get("/admin/").status_code == 200


def test_require_2fa_keeps_the_session_staff_api_closed_until_enrolled(admin_user, settings):
    settings.COUNTERSIGN_REQUIRE_2FA = True
    client = APIClient()
    client.force_login(admin_user)

    response = client.get(POLICIES_API)

    assert response.status_code in {401, 403}
    assert response.json()["error"]["code"] in {"not_authenticated", "permission_denied"}


def test_staff_api_tokens_are_unaffected_by_the_second_factor(admin_user, settings):
    settings.COUNTERSIGN_REQUIRE_2FA = True
    enrolled(admin_user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=admin_user).key}")

    assert client.get(POLICIES_API).status_code == 200


def test_require_2fa_leaves_reviewers_without_a_device_alone(alice, settings):
    settings.COUNTERSIGN_REQUIRE_2FA = True

    assert password_sign_in("alice").get("/queue/").status_code == 200


def test_a_reviewer_who_opted_in_needs_the_code_without_require_2fa(alice, settings):
    settings.COUNTERSIGN_REQUIRE_2FA = False
    enrolled(alice)

    assert password_sign_in("alice").get("/queue/").status_code == 302


def test_the_admin_refuses_an_unverified_session_of_a_user_with_a_device(admin_user):
    enrolled(admin_user)
    browser = Client()
    browser.force_login(admin_user)

    response = browser.get("/admin/approvals/agent/")

    assert response.status_code == 302
    assert response["Location"].startswith(VERIFY)


def test_the_admin_site_itself_asks_the_second_factor_rule(admin_user):
    enrolled(admin_user)
    request = RequestFactory().get("/admin/")
    request.user = admin_user
    admin_user.is_verified = lambda: False

    assert isinstance(admin.site, CountersignAdminSite)
    assert not admin.site.has_permission(request)
    admin_user.is_verified = lambda: True
    assert admin.site.has_permission(request)


def test_the_admin_login_then_the_code_opens_the_admin(admin_user, clock):
    admin_user.set_password(PASSWORD)
    admin_user.save()
    device = enrolled(admin_user)
    browser = Client()

    browser.post("/admin/login/?next=/admin/", {"username": "admin", "password": PASSWORD})
    before = browser.get("/admin/")
    browser.post(VERIFY, {"code": code(device), "next": "/admin/"})
    after = browser.get("/admin/")

    assert before.status_code == 302
    assert before["Location"].startswith(VERIFY)
    assert after.status_code == 200


def test_agents_are_unaffected_by_require_2fa(api, default_policies, settings):
    settings.COUNTERSIGN_REQUIRE_2FA = True

    response = api.get("/api/v1/actions/")

    assert response.status_code != 401
