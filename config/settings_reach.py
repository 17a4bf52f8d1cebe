"""Settings for reaching reviewers outside the queue page and signing them in: email, Slack, one-click
email links, Web Push, single sign-on (README "Reviewing from anywhere"). Each is off until configured.

Star-imported by config.settings; read the environment only through config.env.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from .env import env_bool, env_int, env_list, env_str

MAILERS = {
    "default": {
        "BACKEND": env_str("COUNTERSIGN_EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend"),
        "OPTIONS": {
            "host": env_str("COUNTERSIGN_EMAIL_HOST", "localhost"),
            "port": env_int("COUNTERSIGN_EMAIL_PORT", 25, minimum=1),
            "username": env_str("COUNTERSIGN_EMAIL_USER", ""),
            "password": env_str("COUNTERSIGN_EMAIL_PASSWORD", ""),
            "use_tls": env_bool("COUNTERSIGN_EMAIL_USE_TLS", False),
            "timeout": 10,
        },
    }
}
DEFAULT_FROM_EMAIL = env_str("COUNTERSIGN_EMAIL_FROM", "countersign@localhost")
# Slack interactive approvals (README "Reviewing from anywhere"): each reviewer group's app is set in the
# admin; these are the Web API's address (a stand-in in the tests) and whether a Slack user whose verified
# Slack email matches exactly one active reviewer is taken to be that reviewer without linking first.
COUNTERSIGN_SLACK_API_URL = env_str("COUNTERSIGN_SLACK_API_URL", "https://slack.com/api/")
COUNTERSIGN_SLACK_MATCH_EMAIL = env_bool("COUNTERSIGN_SLACK_MATCH_EMAIL", False)
# How long a one-click decision link in a reviewer's notification email works (it also dies with the request).
COUNTERSIGN_EMAIL_LINK_MAX_AGE_SECONDS = env_int("COUNTERSIGN_EMAIL_LINK_MAX_AGE_SECONDS", 24 * 3600, minimum=60)
# Web Push to reviewers' devices: on when all three are set (`python manage.py generate_vapid_keys` makes the keys).
COUNTERSIGN_VAPID_PUBLIC_KEY = env_str("COUNTERSIGN_VAPID_PUBLIC_KEY", "")
COUNTERSIGN_VAPID_PRIVATE_KEY = env_str("COUNTERSIGN_VAPID_PRIVATE_KEY", "")
COUNTERSIGN_VAPID_SUBJECT = env_str("COUNTERSIGN_VAPID_SUBJECT", "")

# Single sign-on through an OpenID Connect provider (README "Single sign-on"). Its redirect URI is
# <COUNTERSIGN_PUBLIC_URL>/oidc/callback/. The endpoints are the provider's (its discovery document lists them).
OIDC_RP_CLIENT_ID = env_str("COUNTERSIGN_OIDC_CLIENT_ID", "")
OIDC_RP_CLIENT_SECRET = env_str("COUNTERSIGN_OIDC_CLIENT_SECRET", "")
OIDC_OP_AUTHORIZATION_ENDPOINT = env_str("COUNTERSIGN_OIDC_AUTHORIZATION_ENDPOINT", "")
OIDC_OP_TOKEN_ENDPOINT = env_str("COUNTERSIGN_OIDC_TOKEN_ENDPOINT", "")
OIDC_OP_USER_ENDPOINT = env_str("COUNTERSIGN_OIDC_USERINFO_ENDPOINT", "")
OIDC_OP_JWKS_ENDPOINT = env_str("COUNTERSIGN_OIDC_JWKS_ENDPOINT", "")
OIDC_RP_SIGN_ALGO = env_str("COUNTERSIGN_OIDC_SIGN_ALGO", "RS256")
OIDC_RP_SCOPES = env_str("COUNTERSIGN_OIDC_SCOPES", "openid email profile")
OIDC_USE_PKCE = True
OIDC_TIMEOUT = 10
OIDC_AUTHENTICATION_CALLBACK_URL = "oidc_authentication_callback"
LOGIN_REDIRECT_URL_FAILURE = "/accounts/login/?sso=failed"
# The claim listing the user's groups at the provider, and which of them map to which reviewer group
# ("idp-finance=finance,idp-support=reviewers"). Mapped groups follow the claim at every sign-in.
COUNTERSIGN_OIDC_GROUPS_CLAIM = env_str("COUNTERSIGN_OIDC_GROUPS_CLAIM", "groups")
COUNTERSIGN_OIDC_GROUP_MAP = dict(
    item.split("=", 1) for item in env_list("COUNTERSIGN_OIDC_GROUP_MAP", []) if "=" in item
)
# SSO only: passwords stop working for everyone but staff (their way in when the provider is down).
COUNTERSIGN_OIDC_ONLY = env_bool("COUNTERSIGN_OIDC_ONLY", False)
if OIDC_RP_CLIENT_ID and not all(
    (OIDC_RP_CLIENT_SECRET, OIDC_OP_AUTHORIZATION_ENDPOINT, OIDC_OP_TOKEN_ENDPOINT, OIDC_OP_USER_ENDPOINT)
):
    raise ImproperlyConfigured(
        "COUNTERSIGN_OIDC_CLIENT_ID needs COUNTERSIGN_OIDC_CLIENT_SECRET and the provider's "
        "COUNTERSIGN_OIDC_AUTHORIZATION_ENDPOINT, _TOKEN_ENDPOINT, _USERINFO_ENDPOINT (and _JWKS_ENDPOINT for RS256)."
    )
