"""Single sign-on's rules without the provider: group mapping, SSO-only mode, and staying off until configured.

The sign-in through a real provider is tests/e2e/test_sso_browser.py.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from reviewers.services import reviewer_create, reviewer_group_ensure
from reviewers.sso import mapped_groups, reviewer_groups_sync
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
