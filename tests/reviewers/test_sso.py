"""Single sign-on's rules without the provider: group mapping, which account a sign-on lands in, SSO-only
mode, and staying off until configured.

The sign-in through a real provider is tests/e2e/test_sso_browser.py.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import SuspiciousOperation
from django.test import Client

from core.errors import PermissionRefused
from reviewers.models import SsoIdentity
from reviewers.services import reviewer_create, reviewer_group_ensure, sso_identity_link
from reviewers.sso import CountersignOIDCBackend, mapped_groups, reviewer_groups_sync
from tests.factories import UserFactory
from tests.helpers import PASSWORD

MAP = {"idp-finance": "finance", "idp-ops": "ops"}


@pytest.fixture
def sso_on(settings):
    settings.OIDC_RP_CLIENT_ID = "countersign"
    settings.OIDC_RP_CLIENT_SECRET = "secret"
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = "https://idp.example/authorize"
    settings.OIDC_OP_TOKEN_ENDPOINT = "https://idp.example/token"
    settings.OIDC_OP_USER_ENDPOINT = "https://idp.example/userinfo"
    settings.OIDC_OP_JWKS_ENDPOINT = "https://idp.example/jwks"
    settings.COUNTERSIGN_OIDC_GROUP_MAP = MAP


@pytest.mark.parametrize(
    ("claim", "expected"),
    [
        (["idp-finance", "idp-unrelated"], {"finance"}),
        ("idp-ops", {"ops"}),
        ([], set()),
        (None, set()),
        ({"not": "a list"}, set()),
        ([1, None, "idp-ops"], {"ops"}),
    ],
)
def test_the_groups_claim_maps_to_reviewer_groups(claim, expected):
    assert mapped_groups({"groups": claim}, claim="groups", mapping=MAP) == expected


@pytest.mark.django_db
def test_every_sign_in_sets_the_mapped_groups_to_the_claim_and_leaves_the_others(sso_on):
    user = UserFactory(username="ivy")
    user.groups.add(reviewer_group_ensure(name="ops"), reviewer_group_ensure(name="legal"))

    reviewer_groups_sync(user=user, claims={"groups": ["idp-finance"]})

    assert set(user.groups.values_list("name", flat=True)) == {"finance", "legal"}
    assert Group.objects.get(name="finance").permissions.filter(codename="review_actionrequest").exists()
    reviewer_groups_sync(user=user, claims={})
    assert set(user.groups.values_list("name", flat=True)) == {"legal"}


@pytest.mark.django_db
def test_sso_only_refuses_passwords_for_reviewers_but_not_for_staff(sso_on, settings):
    settings.COUNTERSIGN_OIDC_ONLY = True
    reviewer_create(username="alice", password=PASSWORD)
    staff = UserFactory(username="root", is_staff=True)
    staff.set_password(PASSWORD)
    staff.save()

    refused = Client().post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    allowed = Client().post("/accounts/login/", {"username": "root", "password": PASSWORD})

    assert refused.status_code == 200 and "_auth_user_id" not in refused.client.session
    assert "signs reviewers in through single sign-on" in refused.content.decode()
    assert allowed.status_code == 302


@pytest.mark.django_db
def test_with_sso_on_the_sign_in_page_offers_it_and_the_flow_starts_at_the_provider(sso_on):
    page = Client().get("/accounts/login/?next=/queue/")
    assert 'id="sso-sign-in"' in page.content.decode()

    start = Client().get("/oidc/authenticate/?next=/queue/")
    assert start.status_code == 302
    assert start["Location"].startswith("https://idp.example/authorize?")
    assert "code_challenge=" in start["Location"] and "client_id=countersign" in start["Location"]


@pytest.mark.django_db
def test_sso_is_off_until_configured(client):
    reviewer_create(username="alice", password=PASSWORD)
    assert client.get("/oidc/authenticate/").status_code == 404
    assert client.get("/oidc/callback/?code=x&state=y").status_code == 404
    assert 'id="sso-sign-in"' not in client.get("/accounts/login/").content.decode()
    assert client.post("/accounts/login/", {"username": "alice", "password": PASSWORD}).status_code == 302


def sso_backend() -> CountersignOIDCBackend:
    return CountersignOIDCBackend()


def claims(sub: str = "idp-user-1", email: str = "ivy@example.org", **more) -> dict:
    return {"sub": sub, "email": email, "email_verified": True, "preferred_username": "ivy", **more}


@pytest.mark.django_db
def test_a_first_sign_on_ties_the_account_with_that_email_to_the_providers_sub(sso_on):
    ivy = UserFactory(username="ivy", email="Ivy@Example.org")

    [found] = sso_backend().filter_users_by_claims(claims())
    sso_backend().update_user(found, claims())

    assert found == ivy
    assert SsoIdentity.objects.get(user=ivy).subject == "idp-user-1"


@pytest.mark.django_db
def test_a_tied_account_is_found_by_sub_even_after_its_email_changes_at_the_provider(sso_on):
    ivy = UserFactory(username="ivy", email="ivy@example.org")
    sso_identity_link(user=ivy, subject="idp-user-1")

    assert list(sso_backend().filter_users_by_claims(claims(email="ivy.new@example.org"))) == [ivy]


@pytest.mark.django_db
def test_someone_else_given_a_tied_accounts_email_does_not_get_that_account(sso_on):
    ivy = UserFactory(username="ivy", email="ivy@example.org")
    sso_identity_link(user=ivy, subject="idp-user-1")
    backend = sso_backend()

    assert not backend.filter_users_by_claims(claims(sub="idp-user-2"))
    newcomer = backend.create_user(claims(sub="idp-user-2"))

    assert newcomer != ivy and newcomer.sso_identity.subject == "idp-user-2"
    assert SsoIdentity.objects.get(user=ivy).subject == "idp-user-1"


@pytest.mark.parametrize("role", ["is_staff", "is_superuser"])
@pytest.mark.django_db
def test_single_sign_on_never_signs_into_a_staff_account(sso_on, role):
    admin = UserFactory(username="root", email="ivy@example.org", **{role: True})

    with pytest.raises(SuspiciousOperation):
        sso_backend().update_user(admin, claims())

    assert not SsoIdentity.objects.filter(user=admin).exists()


@pytest.mark.parametrize("sub", [None, "", 42, "x" * 256])
def test_claims_without_a_usable_sub_are_refused(sso_on, sub):
    assert not sso_backend().verify_claims(claims(sub=sub))


def test_an_unverified_email_is_refused(sso_on):
    assert not sso_backend().verify_claims(claims(email_verified=False))
    assert sso_backend().verify_claims(claims())


@pytest.mark.django_db
def test_an_identity_is_tied_once_and_never_moved(sso_on):
    ivy, jo = UserFactory(username="ivy"), UserFactory(username="jo")
    first = sso_identity_link(user=ivy, subject="idp-user-1")

    assert sso_identity_link(user=ivy, subject="idp-user-1") == first
    with pytest.raises(PermissionRefused):
        sso_identity_link(user=ivy, subject="idp-user-2")
    with pytest.raises(PermissionRefused):
        sso_identity_link(user=jo, subject="idp-user-1")
    assert list(SsoIdentity.objects.values_list("user__username", "subject")) == [("ivy", "idp-user-1")]
