"""Countersign settings.

Every knob is an environment variable read once, with a safe default, through config.env; the
knobs of reaching reviewers outside the queue page (email, Slack, Web Push, single sign-on) are in
config.settings_reach. Nothing else in the code base reads ``os.environ``.
"""

from __future__ import annotations

import base64
import binascii
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from .env import env_bool, env_choices, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent


DEBUG = env_bool("COUNTERSIGN_DEBUG", False)
SECRET_KEY = env_str("COUNTERSIGN_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG and env_bool("COUNTERSIGN_PRODUCTION", False):
        raise ImproperlyConfigured("COUNTERSIGN_SECRET_KEY must be set in production")
    SECRET_KEY = "countersign-insecure-development-key-change-me"  # noqa: S105

ALLOWED_HOSTS = env_list("COUNTERSIGN_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("COUNTERSIGN_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "core",
    "policies",
    "approvals",
    "reviewers",
    "evaluation",
    "integrations",
]

MIDDLEWARE = [
    "core.responses.ApiJsonErrorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "core.middleware.ApiBodyLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = None
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("COUNTERSIGN_DB_CONN_MAX_AGE", 0, minimum=0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server, the worker and beat read while one of them writes;
    # IMMEDIATE transactions take the write lock up front, so two writers queue
    # behind busy_timeout instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    _test_sqlite = env_str("COUNTERSIGN_TEST_SQLITE_PATH", "")
    if _test_sqlite:
        # A file (not :memory:) so that other processes (a Celery worker) see the test data.
        DATABASES["default"]["TEST"] = {"NAME": _test_sqlite}

# --- Database connections in production (issue 12) ---------------------------------------
# PostgreSQL keeps its connections in psycopg's pool (on by default): a request borrows one
# instead of opening one (~3-5 ms and a backend process each time). Not CONN_MAX_AGE: under
# ASGI Django runs each request's sync code in a thread of its own, and persistent
# connections are kept per thread, so they would pile up instead of being reused.
# SQLite opens a file, which costs next to nothing: no pool there.
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool("COUNTERSIGN_DB_POOL", True):
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool replaces it (Django refuses both)
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env_int("COUNTERSIGN_DB_POOL_MIN_SIZE", 2, minimum=0),
        "max_size": env_int("COUNTERSIGN_DB_POOL_MAX_SIZE", 20, minimum=1),
        "timeout": 10,
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Serve straight from the finders when collectstatic has not run (make run, tests).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/queue/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

# --- Redis: channel layer, Celery broker --------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "core.channel_layer.PipelinedRedisChannelLayer",
        # channels_redis blocks on Redis for up to 5 s per receive; redis-py's own 5 s read timeout
        # would kill idle websockets, so the socket timeout must be longer than that.
        "CONFIG": {
            "hosts": [{"address": REDIS_URL, "socket_timeout": 15}],
            "prefix": env_str("COUNTERSIGN_CHANNEL_PREFIX", "countersign"),
        },
    }
}

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = env_bool("COUNTERSIGN_CELERY_EAGER", False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
COUNTERSIGN_SWEEP_INTERVAL_SECONDS = env_int("COUNTERSIGN_SWEEP_INTERVAL_SECONDS", 5, minimum=1)
CELERY_BEAT_SCHEDULE = {
    "sweep-expired-requests": {
        "task": "approvals.tasks.sweep_expired",
        "schedule": float(COUNTERSIGN_SWEEP_INTERVAL_SECONDS),
    },
    "deliver-due-webhooks": {
        "task": "approvals.tasks.deliver_due_webhooks",
        "schedule": float(COUNTERSIGN_SWEEP_INTERVAL_SECONDS),
    },
}

# --- Countersign -------------------------------------------------------------------------
# What a request matching no policy gets. Fails closed: only approve or block are accepted.
COUNTERSIGN_DEFAULT_MODE = env_str("COUNTERSIGN_DEFAULT_MODE", "approve")
if COUNTERSIGN_DEFAULT_MODE not in {"approve", "block"}:
    raise ImproperlyConfigured("COUNTERSIGN_DEFAULT_MODE must be 'approve' or 'block' (the default fails closed)")
COUNTERSIGN_DEFAULT_PENDING_TTL_SECONDS = env_int("COUNTERSIGN_DEFAULT_PENDING_TTL_SECONDS", 4 * 3600, minimum=1)
COUNTERSIGN_DEFAULT_APPROVAL_TTL_SECONDS = env_int("COUNTERSIGN_DEFAULT_APPROVAL_TTL_SECONDS", 15 * 60, minimum=1)
COUNTERSIGN_MAX_BODY_BYTES = env_int("COUNTERSIGN_MAX_BODY_BYTES", 256 * 1024, minimum=1024)
# Limits on every JSON body and websocket message (core.jsonlimits): nesting depth from the top of the
# document, keys per object / items per array, characters per string or key.
COUNTERSIGN_JSON_MAX_DEPTH = env_int("COUNTERSIGN_JSON_MAX_DEPTH", 64, minimum=4)
if COUNTERSIGN_JSON_MAX_DEPTH > 500:
    raise ImproperlyConfigured("COUNTERSIGN_JSON_MAX_DEPTH must be <= 500 (Python's JSON parser recurses per level)")
COUNTERSIGN_JSON_MAX_KEYS = env_int("COUNTERSIGN_JSON_MAX_KEYS", 1000, minimum=10)
COUNTERSIGN_JSON_MAX_STRING = env_int("COUNTERSIGN_JSON_MAX_STRING", 32768, minimum=256)
COUNTERSIGN_MAX_WAIT_SECONDS = env_int("COUNTERSIGN_MAX_WAIT_SECONDS", 55, minimum=1)
# --- The queue's websocket (reviewers.consumers): largest message (UTF-8 bytes; a larger one closes the
# socket with 1009, and scripts/run.sh and the Dockerfile give uvicorn the same --ws-max-size), and
# messages a second per connection with a burst (over it: a rate_limited error; persisting: close 1008).
COUNTERSIGN_WS_MAX_MESSAGE_BYTES = env_int("COUNTERSIGN_WS_MAX_MESSAGE_BYTES", 64 * 1024, minimum=1024)
COUNTERSIGN_WS_MESSAGES_PER_SECOND = env_int("COUNTERSIGN_WS_MESSAGES_PER_SECOND", 10, minimum=1)
COUNTERSIGN_WS_MESSAGE_BURST = env_int("COUNTERSIGN_WS_MESSAGE_BURST", 20, minimum=1)
# How long "being reviewed by X" lasts without the open page renewing it (it renews every third of this).
COUNTERSIGN_CLAIM_TIMEOUT_SECONDS = env_int("COUNTERSIGN_CLAIM_TIMEOUT_SECONDS", 90, minimum=10)
# Cards per page in the reviewer queue (the page loads more as the reviewer scrolls).
COUNTERSIGN_QUEUE_PAGE_SIZE = env_int("COUNTERSIGN_QUEUE_PAGE_SIZE", 50, minimum=5)
COUNTERSIGN_WEBHOOK_ALLOW_PRIVATE = env_bool("COUNTERSIGN_WEBHOOK_ALLOW_PRIVATE", False)
COUNTERSIGN_WEBHOOK_TIMEOUT_SECONDS = env_int("COUNTERSIGN_WEBHOOK_TIMEOUT_SECONDS", 10, minimum=1)
COUNTERSIGN_WEBHOOK_MAX_AGE_SECONDS = env_int("COUNTERSIGN_WEBHOOK_MAX_AGE_SECONDS", 24 * 3600, minimum=60)


# Categories a reviewer picks from when rejecting; the slug goes back to the agent and into the evaluation data.
COUNTERSIGN_REJECT_REASONS = env_choices(
    "COUNTERSIGN_REJECT_REASONS",
    [
        ("wrong_recipient", "Wrong recipient"),
        ("wrong_data", "Wrong data"),
        ("policy_violation", "Policy violation"),
        ("not_needed", "Not needed"),
        ("unsafe", "Unsafe"),
        ("other", "Other"),
    ],
)

DATA_UPLOAD_MAX_MEMORY_SIZE = COUNTERSIGN_MAX_BODY_BYTES

# Audit trail hash chain (approvals.audit_chain). Set: every event's hash is HMAC-SHA256 under this key,
# so someone who can write the database but does not hold the key cannot forge a consistent chain.
# Changing or removing the key makes every event hashed under the old one fail `manage.py verify_audit`.
COUNTERSIGN_AUDIT_HMAC_KEY = env_str("COUNTERSIGN_AUDIT_HMAC_KEY", "")

# --- REST framework / OpenAPI ------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["approvals.api.authentication.AgentKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["approvals.api.authentication.IsAgent"],
    "DEFAULT_PARSER_CLASSES": ["core.parsers.LimitedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "core.responses.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Countersign API",
    "DESCRIPTION": (
        "A human-approval gateway for AI agents. Agents submit proposed actions; the policy table "
        "allows, blocks or holds them for a human reviewer; the agent learns the outcome by "
        "long-polling or by webhook."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"ExecutionOutcomeEnum": ["succeeded", "failed"]},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "approvals.api.schema.add_wait_endpoint",
        "core.openapi.add_body_limit_errors",
        "core.openapi.add_shared_errors",
    ],
    # Swagger UI is served from our own static files (drf-spectacular-sidecar), never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}

# --- Security -----------------------------------------------------------------------------
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
}
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
if env_bool("COUNTERSIGN_PRODUCTION", False):
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("COUNTERSIGN_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("COUNTERSIGN_HSTS_SECONDS", 31536000, minimum=0)

# --- Secrets at rest (core.crypto, core.fields.EncryptedTextField) ---------------------------
# Fernet keys, comma-separated: the first encrypts, all decrypt (rotation: README "Secrets at rest").
# Unset: one key derived from SECRET_KEY (HKDF), for `make run` and tests; refused in production.
COUNTERSIGN_ENCRYPTION_KEYS = env_list("COUNTERSIGN_ENCRYPTION_KEYS", [])
for _position, _key in enumerate(COUNTERSIGN_ENCRYPTION_KEYS, start=1):
    try:
        _key_ok = len(base64.urlsafe_b64decode(_key.encode())) == 32 and len(_key) == 44
    except (binascii.Error, ValueError):
        _key_ok = False
    if not _key_ok:
        raise ImproperlyConfigured(
            f"COUNTERSIGN_ENCRYPTION_KEYS: key {_position} is not a Fernet key (44 characters of url-safe "
            "base64); make one with `python manage.py generate_encryption_key`"
        )
if not COUNTERSIGN_ENCRYPTION_KEYS and env_bool("COUNTERSIGN_PRODUCTION", False):
    raise ImproperlyConfigured(
        "COUNTERSIGN_ENCRYPTION_KEYS must be set in production (webhook secrets and Slack URLs are encrypted "
        "with it). Make a key with `python manage.py generate_encryption_key`; if this database was run "
        "without it, list the key derived from SECRET_KEY second (`generate_encryption_key --derived`) "
        "and run `manage.py rotate_encryption_keys`"
    )

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("COUNTERSIGN_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Evaluation data, metrics and drift alerts (evaluation app) -------------------------------
COUNTERSIGN_PRODUCTION = env_bool("COUNTERSIGN_PRODUCTION", False)
# Bearer token for /metrics. Unset: open in development, refused (403) in production.
COUNTERSIGN_METRICS_TOKEN = env_str("COUNTERSIGN_METRICS_TOKEN", "")
# Label values per label (action types, agents) on /metrics; the rest are folded into "other".
COUNTERSIGN_METRICS_MAX_LABEL_VALUES = env_int("COUNTERSIGN_METRICS_MAX_LABEL_VALUES", 50, minimum=1)
COUNTERSIGN_DRIFT_INTERVAL_SECONDS = env_int("COUNTERSIGN_DRIFT_INTERVAL_SECONDS", 300, minimum=1)
COUNTERSIGN_DRIFT_RECENT_WINDOW = env_int("COUNTERSIGN_DRIFT_RECENT_WINDOW", 100, minimum=10)
COUNTERSIGN_DRIFT_BASELINE_SIZE = env_int("COUNTERSIGN_DRIFT_BASELINE_SIZE", 2000, minimum=50)
COUNTERSIGN_DRIFT_MIN_BASELINE = env_int("COUNTERSIGN_DRIFT_MIN_BASELINE", 200, minimum=10)
COUNTERSIGN_DRIFT_MIN_EFFECT_POINTS = env_int("COUNTERSIGN_DRIFT_MIN_EFFECT_POINTS", 10, minimum=1)
COUNTERSIGN_DRIFT_REASON_STREAK = env_int("COUNTERSIGN_DRIFT_REASON_STREAK", 5, minimum=2)
try:
    COUNTERSIGN_DRIFT_Z_THRESHOLD = float(env_str("COUNTERSIGN_DRIFT_Z_THRESHOLD", "4.5"))
except ValueError:
    raise ImproperlyConfigured("COUNTERSIGN_DRIFT_Z_THRESHOLD must be a number, e.g. 4.5") from None
try:
    # Time to decision alerts when the recent median is at least this many times the baseline's.
    COUNTERSIGN_DRIFT_TIME_FACTOR = float(env_str("COUNTERSIGN_DRIFT_TIME_FACTOR", "2.0"))
except ValueError:
    raise ImproperlyConfigured("COUNTERSIGN_DRIFT_TIME_FACTOR must be a number, e.g. 2.0") from None
COUNTERSIGN_ALERT_EMAILS = env_list("COUNTERSIGN_ALERT_EMAILS", [])
# Drift alerts as a Standard Webhooks POST, signed with a whsec_ secret (same SSRF rules as agent webhooks).
COUNTERSIGN_ALERT_WEBHOOK_URL = env_str("COUNTERSIGN_ALERT_WEBHOOK_URL", "")
COUNTERSIGN_ALERT_WEBHOOK_SECRET = env_str("COUNTERSIGN_ALERT_WEBHOOK_SECRET", "")
if COUNTERSIGN_ALERT_WEBHOOK_URL and not COUNTERSIGN_ALERT_WEBHOOK_SECRET.startswith("whsec_"):
    raise ImproperlyConfigured("COUNTERSIGN_ALERT_WEBHOOK_URL needs COUNTERSIGN_ALERT_WEBHOOK_SECRET=whsec_<base64>")
# Where people reach this instance, for links in alert emails and webhooks (blank: relative links).
COUNTERSIGN_PUBLIC_URL = env_str("COUNTERSIGN_PUBLIC_URL", "")
# How often beat looks for pending requests entering their group's reminder window (approvals.notifications).
COUNTERSIGN_REMINDER_INTERVAL_SECONDS = env_int("COUNTERSIGN_REMINDER_INTERVAL_SECONDS", 60, minimum=1)
CELERY_BEAT_SCHEDULE["remind-due-requests"] = {
    "task": "approvals.tasks.remind_due_requests",
    "schedule": float(COUNTERSIGN_REMINDER_INTERVAL_SECONDS),
}
CELERY_BEAT_SCHEDULE["detect-drift"] = {
    "task": "evaluation.tasks.detect_drift",
    "schedule": float(COUNTERSIGN_DRIFT_INTERVAL_SECONDS),
}
# Budgets (evaluation.budgets): how often agents' usage is compared with each budget (alerts at 80% and 100%).
COUNTERSIGN_BUDGET_CHECK_INTERVAL_SECONDS = env_int("COUNTERSIGN_BUDGET_CHECK_INTERVAL_SECONDS", 60, minimum=5)
CELERY_BEAT_SCHEDULE["check-budgets"] = {
    "task": "evaluation.tasks.check_budgets",
    "schedule": float(COUNTERSIGN_BUDGET_CHECK_INTERVAL_SECONDS),
}
CELERY_BEAT_SCHEDULE["deliver-due-alert-notifications"] = {
    "task": "evaluation.tasks.deliver_due_alert_notifications",
    "schedule": float(COUNTERSIGN_SWEEP_INTERVAL_SECONDS),
}
CELERY_BEAT_SCHEDULE["deliver-due-queue-notifications"] = {
    "task": "approvals.tasks.deliver_due_queue_notifications",
    "schedule": float(COUNTERSIGN_SWEEP_INTERVAL_SECONDS),
}

# --- Containment of runaway agents: rate limits, pending cap, duplicate retries (approvals.services.containment) ---
# Submissions per minute per agent (all its keys together); 0 turns the limit off. Per-agent overrides: Agent fields.
COUNTERSIGN_RATE_LIMIT_PER_MINUTE = env_int("COUNTERSIGN_RATE_LIMIT_PER_MINUTE", 120, minimum=0)
# Submissions per minute per API key, never looser than the agent's; unset: only the agent's limit applies.
COUNTERSIGN_KEY_RATE_LIMIT_PER_MINUTE = (
    env_int("COUNTERSIGN_KEY_RATE_LIMIT_PER_MINUTE", 0, minimum=0)
    if env_str("COUNTERSIGN_KEY_RATE_LIMIT_PER_MINUTE", "").strip()
    else None
)
# The limiter's Redis (sliding windows shared by every process); unreachable: each process limits on its own.
COUNTERSIGN_RATE_LIMIT_REDIS_URL = env_str("COUNTERSIGN_RATE_LIMIT_REDIS_URL", "") or REDIS_URL
# Requests one agent may have waiting for a reviewer at once; 0 turns the cap off.
COUNTERSIGN_MAX_PENDING_PER_AGENT = env_int("COUNTERSIGN_MAX_PENDING_PER_AGENT", 100, minimum=0)
# Context keys that identify the task: a retry identical in action type, params and these collapses into the pending card.
COUNTERSIGN_DUPLICATE_CONTEXT_KEYS = env_list(
    "COUNTERSIGN_DUPLICATE_CONTEXT_KEYS", ["task_id", "thread_id", "session_id", "conversation_id"]
)
SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"].append("approvals.api.schema.add_rate_limit_headers")

# --- Sign-in protection (django-axes) ------------------------------------------------------
# Failed sign-ins are counted per username and, separately, per client address; either one
# alone reaching the limit refuses further attempts (even with the right password) until the
# lockout ends. Lockouts are AccessAttempt rows in the admin; lift one there (delete) or with
# `manage.py axes_reset_username NAME` / `axes_reset_ip ADDRESS`.
INSTALLED_APPS.append("axes")
MIDDLEWARE.append("axes.middleware.AxesMiddleware")  # last: turns a refused sign-in into our lockout page
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out attempt before any password check
    "django.contrib.auth.backends.ModelBackend",
    # Single sign-on (OpenID Connect): inert until COUNTERSIGN_OIDC_CLIENT_ID is set (reviewers/sso.py).
    "reviewers.sso.CountersignOIDCBackend",
]

from .settings_reach import *  # noqa: E402, F403  (Slack, email links, Web Push, SSO)

COUNTERSIGN_LOGIN_FAILURE_LIMIT = env_int("COUNTERSIGN_LOGIN_FAILURE_LIMIT", 5, minimum=1)
COUNTERSIGN_LOGIN_LOCKOUT_SECONDS = env_int("COUNTERSIGN_LOGIN_LOCKOUT_SECONDS", 900, minimum=1)
# Reverse proxies in front of Countersign that append to X-Forwarded-For. 0: the client address is
# REMOTE_ADDR and X-Forwarded-For is ignored (anyone can send it); N: the N-th address from the right.
COUNTERSIGN_TRUSTED_PROXY_COUNT = env_int("COUNTERSIGN_TRUSTED_PROXY_COUNT", 0, minimum=0)
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_FAILURE_LIMIT = COUNTERSIGN_LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(seconds=COUNTERSIGN_LOGIN_LOCKOUT_SECONDS)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # each alone locks (a nested list would mean "both")
# A refused attempt during a lockout does not push its end back, so the time on the page holds.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_RESET_ON_SUCCESS = False  # one known password must not wipe an address's count of guesses at others
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_CLIENT_IP_CALLABLE = "core.clientaddr.client_address"
AXES_USERNAME_CALLABLE = "reviewers.login_protection.attempted_username"
AXES_LOCKOUT_CALLABLE = "reviewers.login_protection.lockout_response"
AXES_HTTP_RESPONSE_CODE = 429

# --- Optional second factor (django-otp, TOTP) ----------------------------------------------
# Anyone may turn on a TOTP authenticator at /accounts/two-factor/; from then on a session must pass a code
# after the password before any page, the admin or the queue's websocket works (reviewers/two_factor.py).
# COUNTERSIGN_REQUIRE_2FA=true: staff must enrol before they can do anything else.
INSTALLED_APPS[INSTALLED_APPS.index("django.contrib.admin")] = "config.apps.CountersignAdminConfig"
INSTALLED_APPS += ["django_otp", "django_otp.plugins.otp_totp"]
_after_auth = MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1
MIDDLEWARE[_after_auth:_after_auth] = [
    "django_otp.middleware.OTPMiddleware",
    "reviewers.two_factor.SecondFactorMiddleware",
]
COUNTERSIGN_REQUIRE_2FA = env_bool("COUNTERSIGN_REQUIRE_2FA", False)
OTP_TOTP_ISSUER = env_str("COUNTERSIGN_TOTP_ISSUER", "Countersign")
# Each wrong code doubles the wait before the next one is even checked (1 s, 2 s, 4 s, ...).
OTP_TOTP_THROTTLE_FACTOR = 1

# --- The reviewer API (/api/v1/review/, reviewers.api): reviewers' personal access tokens ---
# The longest a token may live (days); every token has an expiry, chosen at creation within this.
COUNTERSIGN_PAT_MAX_LIFETIME_DAYS = env_int("COUNTERSIGN_PAT_MAX_LIFETIME_DAYS", 90, minimum=1)
# The lifetime offered by default on the tokens page (days), capped by the maximum.
COUNTERSIGN_PAT_DEFAULT_LIFETIME_DAYS = min(
    env_int("COUNTERSIGN_PAT_DEFAULT_LIFETIME_DAYS", 30, minimum=1), COUNTERSIGN_PAT_MAX_LIFETIME_DAYS
)

# --- Tracing (core.tracing, approvals.tracing): OpenTelemetry spans into the agent's own trace ---
# An OTLP/HTTP traces endpoint (e.g. http://otel-collector:4318/v1/traces); empty: no spans, the SDK is never imported.
COUNTERSIGN_OTLP_ENDPOINT = env_str("COUNTERSIGN_OTLP_ENDPOINT", "")
# Headers for that endpoint, as comma-separated name=value pairs (e.g. an API key of a hosted backend).
COUNTERSIGN_OTLP_HEADERS = dict(pair.split("=", 1) for pair in env_list("COUNTERSIGN_OTLP_HEADERS", []) if "=" in pair)
COUNTERSIGN_OTEL_SERVICE_NAME = env_str("COUNTERSIGN_OTEL_SERVICE_NAME", "countersign")

# --- Reviewer quality (reviewers.quality; staff only) ---------------------------------------------
# An approval this many seconds or less after the reviewer first opened the card counts as "fast".
COUNTERSIGN_FAST_APPROVAL_SECONDS = env_int("COUNTERSIGN_FAST_APPROVAL_SECONDS", 5, minimum=1)
# Share of decided requests shown blind to a second reviewer (0 to 1; 0 turns second opinions off).
try:
    COUNTERSIGN_SECOND_OPINION_RATE = float(env_str("COUNTERSIGN_SECOND_OPINION_RATE", "0.05"))
except ValueError:
    raise ImproperlyConfigured("COUNTERSIGN_SECOND_OPINION_RATE must be a number from 0 to 1") from None
if not 0 <= COUNTERSIGN_SECOND_OPINION_RATE <= 1:
    raise ImproperlyConfigured("COUNTERSIGN_SECOND_OPINION_RATE must be a number from 0 to 1")

# --- Usage in policy conditions (policies.usage, approvals.usage) -----------------------------------
# What usage.count / usage.sum count: allowed (not refused: let through, approved, run or still pending),
# approved (let through or approved; pending not yet), executed (reported run successfully).
COUNTERSIGN_USAGE_COUNTS = env_str("COUNTERSIGN_USAGE_COUNTS", "allowed")
if COUNTERSIGN_USAGE_COUNTS not in {"allowed", "approved", "executed"}:
    raise ImproperlyConfigured(
        f"COUNTERSIGN_USAGE_COUNTS must be allowed, approved or executed, got {COUNTERSIGN_USAGE_COUNTS!r}"
    )

# --- The release gate (evaluation.release_gate, GET /api/v1/release-gate/) -------------------------
# Human decisions a candidate version needs before the gate passes or fails it (before: insufficient_data).
COUNTERSIGN_RELEASE_GATE_MIN_DECISIONS = env_int("COUNTERSIGN_RELEASE_GATE_MIN_DECISIONS", 30, minimum=1)

# --- Review afterwards (approvals.services.after_review): log requests and sampled auto ones, labelled later ---
# A request still unlabelled after this many days leaves the queue (counted as unlabelled in /metrics).
COUNTERSIGN_AFTER_REVIEW_MAX_AGE_DAYS = env_int("COUNTERSIGN_AFTER_REVIEW_MAX_AGE_DAYS", 7, minimum=1)
CELERY_BEAT_SCHEDULE["lapse-after-reviews"] = {
    "task": "approvals.tasks.lapse_after_reviews",
    "schedule": 3600.0,
}
# The same flag (label and reason category), this many times in a row for one action type and agent, alerts.
COUNTERSIGN_FLAG_STREAK = env_int("COUNTERSIGN_FLAG_STREAK", 3, minimum=2)
