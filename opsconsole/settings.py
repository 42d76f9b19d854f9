"""Ops Console settings: every value comes from the environment (see .env.example)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import environ

from opsconsole.env import (
    ImproperlyConfiguredEnv,
    anymail_settings,
    backup_drill_settings,
    database_from_url,
    env_bool,
    env_choice,
    env_cidrs,
    env_int,
    env_int_between,
    env_list,
    env_str,
    fcm_settings,
    notification_channels,
    proxy_ssl_header,
    q_cluster_settings,
    secret_key_from_env,
    shared_cache,
    spectacular_settings,
    sqlite_database,
    twilio_settings,
    whatsapp_settings,
    worker_switches,
)
from opsconsole.http import content_security
from opsconsole.http.logs import configure_logging

BASE_DIR = Path(__file__).resolve().parent.parent
# django-environ loads .env into the environment (never over a variable already set). The
# test suite sets OPSCONSOLE_READ_ENV_FILE=false so a developer's .env cannot change it.
if os.environ.get("OPSCONSOLE_READ_ENV_FILE", "true").strip().lower() not in {"0", "false", "no"}:
    environ.Env.read_env(BASE_DIR / ".env")
VAR_DIR = BASE_DIR / "var"
# var/ holds the embedded database and collected static files; it is never committed.
(VAR_DIR / "static").mkdir(parents=True, exist_ok=True)


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = secret_key_from_env(debug=DEBUG)

# Transport security (manage.py check --deploy passes with no warning when these are set).
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", SECURE_HSTS_SECONDS > 0)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# Behind a TLS-terminating proxy: e.g. SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https
SECURE_PROXY_SSL_HEADER = proxy_ssl_header()
# Health probes come over plain HTTP from inside the cluster.
SECURE_REDIRECT_EXEMPT = [r"^api/v1/health/", r"^metrics$"]

# A staff session lasts a shift, not Django's two weeks: overnight, the password again.
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 8 * 3600)
# Its own name: another Django site on the same host (an identity provider in a dev setup)
# would otherwise share Django's default `sessionid` cookie, browsers keeping cookies per
# host and not per port, and each sign-in would end the other's session.
SESSION_COOKIE_NAME = "opsconsole_session"
# Messages kept server-side: a secret shown once (a new signing secret) never rides a cookie.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
CONTENT_SECURITY_POLICY = content_security.POLICY  # django-csp; the module says why
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list(
    "CSRF_TRUSTED_ORIGINS", "http://localhost:8000,http://127.0.0.1:8000"
)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "csp",
    "drf_spectacular_sidecar",
    "drf_spectacular",
    "simple_history",
    "django_q",
    "axes",
    "waffle",
    "opsconsole.apps.PlatformConfig",
    "storefront",
    "notifications",
    "payments",
    "bookings",
    "recovery",
]

MIDDLEWARE = [
    "opsconsole.http.middleware.RequestContextMiddleware",
    "opsconsole.http.body_limit.BodySizeLimitMiddleware",
    "opsconsole.http.nul_bytes.NulByteRefusalMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Re-checks a provider-verified session; its cached fallback while the provider is down.
    "opsconsole.access.identity.IdentitySessionMiddleware",
    "opsconsole.access.personal_data.PersonalDataVisibilityMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "opsconsole.http.errors.ApiExceptionMiddleware",
    # Counts failed logins and locks accounts out (docs/runbooks/incident-response.md).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "opsconsole.urls"
WSGI_APPLICATION = "opsconsole.wsgi.application"

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
                "opsconsole.monitoring.banner.console_banner",
                "opsconsole.access.identity.sign_in",
            ],
        },
    },
]

_database_url = env_str("DATABASE_URL", "")
DATABASES = {
    "default": database_from_url(_database_url)
    if _database_url
    else sqlite_database(VAR_DIR / "opsconsole.sqlite3")
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
FORMAT_MODULE_PATH = ["opsconsole.formats"]  # one way to write a time on every page
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: its WWW-Authenticate header is what makes DRF answer 401, not 403.
        "opsconsole.access.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
        "opsconsole.access.authentication.AnonymousRateLimit",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["opsconsole.http.parsers.BoundedJSONParser"],
    "EXCEPTION_HANDLER": "opsconsole.http.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "opsconsole.http.schema.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DEFAULT_THROTTLE_CLASSES": [
        "opsconsole.access.throttles.PrincipalRateThrottle",
    ],
}
# Rate limits (rate_counters): per client address when anonymous, else per user or station.
API_THROTTLE_RATES = {
    "anon": env_str("API_THROTTLE_ANON", "60/min"),
    "user": env_str("API_THROTTLE_USER", "1200/min"),
    "station_redeem": env_str("API_THROTTLE_STATION_REDEEM", "30/min"),
    "ingest": env_str("API_THROTTLE_INGEST", "1200/min"),  # requests of up to 100 events
    "campaign_create": env_str("API_THROTTLE_CAMPAIGN_CREATE", "10/min"),  # each a large list
}
# Failed credentials (API tokens, station keys) per client address before 429; their window.
AUTH_TOKEN_FAILURE_LIMIT = env_int("AUTH_TOKEN_FAILURE_LIMIT", 10)
AUTH_TOKEN_FAILURE_WINDOW_SECONDS = env_int("AUTH_TOKEN_FAILURE_WINDOW_SECONDS", 300)

# API tokens (django-rest-knox): stored as hashes, expire after this many days.
API_TOKEN_TTL_DAYS = env_int("API_TOKEN_TTL_DAYS", 90)
REST_KNOX = {
    "TOKEN_TTL": timedelta(days=API_TOKEN_TTL_DAYS),
    "AUTH_HEADER_PREFIX": "Token",
    "AUTO_REFRESH": False,
    "TOKEN_LIMIT_PER_USER": None,
}

SPECTACULAR_SETTINGS = spectacular_settings()

REDIS_URL = env_str("REDIS_URL", "")
Q_CLUSTER = q_cluster_settings(REDIS_URL)  # django-q2 (opsconsole.env says why so)
# A worker's wakes within this window are sent once, and once more at its end (wakes.py).
WAKE_COALESCE_MS = env_int("WAKE_COALESCE_MS", 1000)
# Listening workers (workers/listeners.py): a direct connection for LISTEN behind PgBouncer,
# and how often they look for due rows besides their wakes.
DATABASE_LISTEN_URL = env_str("DATABASE_LISTEN_URL", "")
LISTEN_POLL_MS = env_int_between("LISTEN_POLL_MS", 1000, 10, 60_000)

# The cache every process shares (probe results): Redis when REDIS_URL is set, otherwise
# a table in the database (migration 0008). Rate-limit counters are rows of their own.
CACHE_TABLE = "opsconsole_cache"
CACHES = shared_cache(REDIS_URL, CACHE_TABLE)

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "opsconsole.access.auth_backends.PermissionsInOneQueryBackend",
    # Signs staff in through the identity provider; answers nothing until it is configured.
    "opsconsole.access.identity.IdentityProviderBackend",
]
# Lock an account after this many failed logins, for this long (django-axes).
AXES_FAILURE_LIMIT = env_int("AUTH_LOCKOUT_THRESHOLD", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AUTH_LOCKOUT_MINUTES", 30))
# Per user and client address (opsconsole.http.client_address: the client's, not a balancer's):
# five bad passwords lock that client out of that account, not everyone out of it.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_CLIENT_IP_CALLABLE = "opsconsole.http.client_address.client_ip"
AXES_RESET_ON_SUCCESS = True
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_VERBOSE = False
SILENCED_SYSTEM_CHECKS = ["axes.W006"]

# Feature switches (django-waffle): the storefront surfaces an operator may suspend during
# an incident (storefront/surfaces.py; docs/runbooks/incident-response.md). Their rows come
# from storefront's data migration; a row missing reads as on, since a surface is served
# unless someone switched it off. They are flipped in Admin -> Storefront surfaces, with a
# reason and an audit row: waffle's own admin pages, which change them with neither, are
# not registered.
WAFFLE_SWITCH_DEFAULT = True
WAFFLE_ENABLE_ADMIN_PAGES = False

# Worker kill switches: the settings default, overridden by a WorkerSwitch row when present.
WORKER_DEFAULTS_ENABLED = worker_switches(
    "integration_delivery_worker",
    "hosted_recovery_worker",
    "refund_retry_worker",
    "booking_hold_expiry_worker",
    "notification_delivery_worker",
    "campaign_dispatcher_worker",
    "campaign_target_importer",
    ("campaign_stall_detector", "CAMPAIGN_STALL_DETECTOR_ENABLED"),
    ("dlq_sweeper", "DLQ_SWEEPER_ENABLED"),
    ("retention_redactor", "RETENTION_REDACTOR_ENABLED"),
    "bulk_action_worker",
    ("failure_alerter", "FAILURE_ALERTER_ENABLED"),
    "incident_recorder",
    ("weekly_digest_scheduler", "WEEKLY_DIGEST_ENABLED"),
    "queue_depth_sampler",
    "fulfillment_processor",
    "catalog_scheduler",
    "bundle_guardrail_worker",
    "loyalty_nudge_dispatch",
    "onboarding_nudges",
)
# The weekly digest goes to this address (empty: the worker reports it not configured).
OPERATIONS_DIGEST_EMAIL = env_str("OPERATIONS_DIGEST_EMAIL", "")
BACKUP_DRILL = backup_drill_settings()  # off-host copy, schedule, readyz age (see env.py)
NOTIFICATION_ALERT_WINDOW_MINUTES = env_int("NOTIFICATION_ALERT_WINDOW_MINUTES", 15)
WORKER_BATCH_SIZE = env_int("WORKER_BATCH_SIZE", 50)
# An admin replay of many items runs as a bulk action at this pace (items a second; at most
# the bulk engine's 50). A replay only re-queues the item; the delivery worker calls out.
ADMIN_BULK_REPLAY_RATE_PER_SECOND = env_int_between("ADMIN_BULK_REPLAY_RATE_PER_SECOND", 50, 1, 50)
WORKER_LEASE_SECONDS = env_int("WORKER_LEASE_SECONDS", 120)
# A scheduled delivery run keeps claiming batches this long while work is due (so a minute's
# schedule is no one-batch ceiling); below the minute, so runs rarely overlap.
WORKER_DRAIN_SECONDS = env_int("WORKER_DRAIN_SECONDS", 45)
# A worker whose heartbeat is older than this is reported degraded in readyz.
WORKER_STALE_AFTER_SECONDS = env_int("WORKER_STALE_AFTER_SECONDS", 300)

# Outbound calls reach globally routable addresses only (opsconsole.outbound.guard), except these
# hosts (tests, benchmarks and make run: 127.0.0.1,localhost); plain http only to them.
OUTBOUND_ALLOWED_HOSTS = env_list("OUTBOUND_ALLOWED_HOSTS", "")

# Integration deliveries (docs/runbooks/integration-retry-and-replay.md): retry policy defaults.
INTEGRATION_MAX_ATTEMPTS = env_int("INTEGRATION_MAX_ATTEMPTS", 5)
INTEGRATION_BACKOFF_BASE_SECONDS = env_int("INTEGRATION_BACKOFF_BASE_SECONDS", 30)
# Delivery calls in flight per worker process, shared by its INTEGRATION_DELIVERY_CONCURRENCY
# processors (threads, PostgreSQL only; recovery/integrations/delivery/); 1: one at a time.
# A SIGKILL repeats at most processors x in-flight calls, each with its idempotency key.
INTEGRATION_DELIVERY_IN_FLIGHT = env_int("INTEGRATION_DELIVERY_IN_FLIGHT", 64)
INTEGRATION_DELIVERY_CONCURRENCY = env_int("INTEGRATION_DELIVERY_CONCURRENCY", 2)
INTEGRATION_BACKOFF_CAP_SECONDS = env_int("INTEGRATION_BACKOFF_CAP_SECONDS", 3600)
INTEGRATION_HTTP_TIMEOUT_SECONDS = env_int("INTEGRATION_HTTP_TIMEOUT_SECONDS", 10)
INGESTION_DEDUP_DAYS = env_int("INGESTION_DEDUP_DAYS", 7)  # a producer's event id, remembered
# Network failure classes treated as transient (the "configured retryable code set").
INTEGRATION_RETRYABLE_NETWORK_ERRORS = env_list(
    "INTEGRATION_RETRYABLE_NETWORK_ERRORS",
    "connect_timeout,read_timeout,write_timeout,pool_timeout,connection_refused,"
    "connection_reset,dns_failure,remote_protocol_error",
)

# Circuit breaker per integration: open after this many retryable failures in a row, probe
# every N seconds while open, then drain this many deliveries per worker run.
CIRCUIT_FAILURE_THRESHOLD = env_int("CIRCUIT_FAILURE_THRESHOLD", 5)
CIRCUIT_PROBE_SECONDS = env_int("CIRCUIT_PROBE_SECONDS", 60)
CIRCUIT_DRAIN_PER_RUN = env_int("CIRCUIT_DRAIN_PER_RUN", 10)

# Customer data in delivery bodies, message recipients and webhook payloads older than this
# is replaced by its hash (daily job, audited); audit events are never deleted.
RETENTION_DAYS = env_int("RETENTION_DAYS", 90)
# Opening a customer's case is audited; when set, it also needs a reason.
CASE_REASON_REQUIRED = env_bool("CASE_REASON_REQUIRED", False)
# Failures older than this go to manual review (docs/runbooks/bookings-payments-notifications.md).
DLQ_MANUAL_REVIEW_AFTER_HOURS = env_int("DLQ_MANUAL_REVIEW_AFTER_HOURS", 24)

# Hosted checkout session recovery (docs/runbooks/hosted-session-recovery.md).
HOSTED_RECOVERY_MAX_ATTEMPTS = env_int("HOSTED_RECOVERY_MAX_ATTEMPTS", 5)
HOSTED_RECOVERY_BACKOFF_BASE_SECONDS = env_int("HOSTED_RECOVERY_BACKOFF_BASE_SECONDS", 900)
HOSTED_RECOVERY_BACKOFF_CAP_SECONDS = env_int("HOSTED_RECOVERY_BACKOFF_CAP_SECONDS", 86400)
# The customer hears from the automation at most this often, however often it retries.
HOSTED_RECOVERY_NOTIFY_INTERVAL_MINUTES = env_int("HOSTED_RECOVERY_NOTIFY_INTERVAL_MINUTES", 360)

PAYMENTS_CHECKOUT_PROVIDER = env_choice("PAYMENTS_CHECKOUT_PROVIDER", "http", ("http", "stripe"))
STRIPE_CHECKOUT_SUCCESS_URL = env_str("STRIPE_CHECKOUT_SUCCESS_URL", "")
STRIPE_CHECKOUT_CANCEL_URL = env_str("STRIPE_CHECKOUT_CANCEL_URL", "")
PAYMENTS_CHECKOUT_URL = env_str("PAYMENTS_CHECKOUT_URL", "")
PAYMENTS_CHECKOUT_API_KEY = env_str("PAYMENTS_CHECKOUT_API_KEY", "")
PAYMENTS_CHECKOUT_LINK_MINUTES = env_int("PAYMENTS_CHECKOUT_LINK_MINUTES", 60 * 24)
PAYMENTS_HTTP_TIMEOUT_SECONDS = env_int("PAYMENTS_HTTP_TIMEOUT_SECONDS", 10)
WEB_REQUEST_TIMEOUT_SECONDS = env_int("GUNICORN_TIMEOUT", 60)  # Procfile's; checked at start
PROVIDER_WEB_TIMEOUT_SECONDS = env_int("PROVIDER_WEB_TIMEOUT_SECONDS", 5)  # inside a request

CHECK_IN_OPENS_MINUTES = env_int("CHECK_IN_OPENS_MINUTES", 60)  # before a booking's start
# 5-minute holds; a confirm this late still wins (docs/runbooks/bookings-payments-notifications.md).
BOOKING_HOLD_SECONDS = env_int("BOOKING_HOLD_SECONDS", 300)
BOOKING_HOLD_GRACE_SECONDS = env_int("BOOKING_HOLD_GRACE_SECONDS", 30)
BOOKING_MAX_SLOT_HOURS = env_int("BOOKING_MAX_SLOT_HOURS", 24)
# A client holds at most this many slots at once, so nobody can hold a whole day's courts.
BOOKING_MAX_ACTIVE_HOLDS_PER_CLIENT = env_int("BOOKING_MAX_ACTIVE_HOLDS_PER_CLIENT", 3)
# A customer cancels until this many minutes before the start (0: until it); staff later.
BOOKING_CLIENT_CANCEL_CUTOFF_MINUTES = env_int_between("BOOKING_CLIENT_CANCEL_CUTOFF_MINUTES", 0, 0)

# Refunds: PENDING row, provider call, 3 retries (docs/runbooks/bookings-payments-notifications.md).
REFUND_MAX_ATTEMPTS = env_int("REFUND_MAX_ATTEMPTS", 4)  # the attempt and 3 retries
REFUND_FIRST_RETRY_SECONDS = env_int("REFUND_FIRST_RETRY_SECONDS", 300)
REFUND_BACKOFF_BASE_SECONDS = env_int("REFUND_BACKOFF_BASE_SECONDS", 60)
REFUND_BACKOFF_CAP_SECONDS = env_int("REFUND_BACKOFF_CAP_SECONDS", 3600)
# Failed refunds above this amount raise a critical alert.
REFUND_ALERT_AMOUNT = env_int("REFUND_ALERT_AMOUNT", 100)
# Stripe: unset key means the sandbox refund provider. The base URL is settable for tests.
STRIPE_API_BASE = env_str("STRIPE_API_BASE", "https://api.stripe.com")
STRIPE_API_VERSION = env_str("STRIPE_API_VERSION", "2026-10-28.endive")  # pinned, sent each call
STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY", "")
# Unset means /webhooks/stripe answers 503 (it cannot verify, so it accepts nothing).
STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET", "")
# stripe-python treats a tolerance of 0 as "accept any age": replayed events would pass.
STRIPE_WEBHOOK_TOLERANCE_SECONDS = env_int_between("STRIPE_WEBHOOK_TOLERANCE_SECONDS", 300, 1)

# Voucher PNG previews: unset URL means previews answer `not_configured` (degraded copy).
VOUCHER_RENDERER_URL = env_str("VOUCHER_RENDERER_URL", "")
VOUCHER_RENDERER_TIMEOUT_SECONDS = env_int("VOUCHER_RENDERER_TIMEOUT_SECONDS", 3)
# /api/integrations/status answers probes this fresh unless ?force=true.
INTEGRATION_STATUS_CACHE_SECONDS = env_int("INTEGRATION_STATUS_CACHE_SECONDS", 60)

# Sandbox providers only when true (make run, tests); see opsconsole/outbound/providers.py.
PROVIDERS_SANDBOX = env_bool("PROVIDERS_SANDBOX", False)

# Message channels: NOTIFICATIONS_<CHANNEL>_URL, <CHANNEL>_PROVIDER (see opsconsole/env.py).
NOTIFICATION_CHANNELS = notification_channels()
NOTIFICATIONS_HTTP_TIMEOUT_SECONDS = env_int("NOTIFICATIONS_HTTP_TIMEOUT_SECONDS", 10)
ANYMAIL_ESP = env_str("ANYMAIL_ESP", "resend")  # EMAIL_PROVIDER=anymail sends through it
ANYMAIL = anymail_settings(timeout_seconds=NOTIFICATIONS_HTTP_TIMEOUT_SECONDS)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Ops Console <no-reply@example.com>")
TWILIO = twilio_settings()  # SMS_PROVIDER=twilio
WHATSAPP = whatsapp_settings()  # WHATSAPP_PROVIDER=cloud_api
FCM = fcm_settings()  # PUSH_PROVIDER=fcm
# Email: 5 attempts, backoff from 1 minute (docs/runbooks/bookings-payments-notifications.md).
NOTIFICATION_MAX_ATTEMPTS = env_int("NOTIFICATION_MAX_ATTEMPTS", 5)
# The fulfillment processor (docs/runbooks/incident-response.md): attempts before a paid
# booking's fulfilment parks for an operator, and the first wait (doubling, capped at 1 h).
FULFILLMENT_MAX_ATTEMPTS = env_int("FULFILLMENT_MAX_ATTEMPTS", 5)
FULFILLMENT_BACKOFF_BASE_SECONDS = env_int("FULFILLMENT_BACKOFF_BASE_SECONDS", 60)
# The catalog scheduler: attempts before a change that cannot apply parks, the first wait.
CATALOG_CHANGE_MAX_ATTEMPTS = env_int("CATALOG_CHANGE_MAX_ATTEMPTS", 5)
CATALOG_CHANGE_BACKOFF_BASE_SECONDS = env_int("CATALOG_CHANGE_BACKOFF_BASE_SECONDS", 60)
# Nudges (bookings/nudges.py): a voucher is recalled this many days before it expires; the
# onboarding sequence's steps go this many days after signing up, to customers who signed up
# within the window and have not booked; nobody is nudged in their quiet hours (local time).
LOYALTY_NUDGE_EXPIRY_DAYS = env_int("LOYALTY_NUDGE_EXPIRY_DAYS", 7)
ONBOARDING_NUDGE_DAYS = tuple(int(d) for d in env_list("ONBOARDING_NUDGE_DAYS", "1,3,7"))
if len(ONBOARDING_NUDGE_DAYS) != 3 or list(ONBOARDING_NUDGE_DAYS) != sorted(ONBOARDING_NUDGE_DAYS):
    raise ImproperlyConfiguredEnv("ONBOARDING_NUDGE_DAYS is three rising day counts, e.g. 1,3,7")
ONBOARDING_WINDOW_DAYS = env_int("ONBOARDING_WINDOW_DAYS", 14)
NUDGE_QUIET_HOURS = env_str("NUDGE_QUIET_HOURS", "21:00-08:00")
NUDGE_MAX_ATTEMPTS = env_int("NUDGE_MAX_ATTEMPTS", 5)
NUDGE_BACKOFF_BASE_SECONDS = env_int("NUDGE_BACKOFF_BASE_SECONDS", 60)
# AI help (opsconsole/outbound/ai_help.py): an OpenAI-compatible endpoint, off unless all
# three are set; no retry, and the specification's 30-second timeout. On any failure the
# operator gets the raw material with a fallbackReason.
AI_API_BASE_URL = env_str("AI_API_BASE_URL", "")
AI_API_KEY = env_str("AI_API_KEY", "")
AI_MODEL = env_str("AI_MODEL", "")
AI_TIMEOUT_SECONDS = env_int_between("AI_TIMEOUT_SECONDS", 30, 1, 30)
# Staff sign-in through the identity provider (OpenID Connect, mozilla-django-oidc;
# opsconsole/access/identity.py, docs/runbooks/identity-provider-outage.md): on once the
# client and the provider's four endpoints are set. Its groups claim maps to the console's
# roles; staff then have no local password unless STAFF_PASSWORD_LOGIN. While the provider
# is down, sessions it verified within IDP_FALLBACK_MINUTES keep working (the
# specification's cache), re-checked every IDP_RECHECK_SECONDS; BREAK_GLASS_USERNAME names
# a local account that may sign in with its password only then (off when empty).
OIDC_RP_CLIENT_ID = env_str("OIDC_RP_CLIENT_ID", "")
OIDC_RP_CLIENT_SECRET = env_str("OIDC_RP_CLIENT_SECRET", "")
OIDC_OP_AUTHORIZATION_ENDPOINT = env_str("OIDC_OP_AUTHORIZATION_ENDPOINT", "")
OIDC_OP_TOKEN_ENDPOINT = env_str("OIDC_OP_TOKEN_ENDPOINT", "")
OIDC_OP_USER_ENDPOINT = env_str("OIDC_OP_USER_ENDPOINT", "")
OIDC_OP_JWKS_ENDPOINT = env_str("OIDC_OP_JWKS_ENDPOINT", "")
OIDC_RP_SIGN_ALGO = env_str("OIDC_RP_SIGN_ALGO", "RS256")
OIDC_RP_SCOPES = "openid email profile"
OIDC_USE_PKCE = True
OIDC_STORE_ACCESS_TOKEN = True  # the session is re-checked with it (userinfo)
OIDC_TIMEOUT = env_int_between("OIDC_TIMEOUT_SECONDS", 5, 1, 30)
OIDC_AUTHENTICATION_CALLBACK_URL = "sso-callback"
OIDC_PROVIDER_NAME = env_str("OIDC_PROVIDER_NAME", "your identity provider")
OIDC_GROUPS_CLAIM = env_str("OIDC_GROUPS_CLAIM", "groups")
# provider group=console group, comma separated
OIDC_ROLE_GROUPS = dict(
    pair.split("=", 1)
    for pair in env_list(
        "OIDC_ROLE_GROUPS",
        "console-operators=Support operator,console-viewers=Support viewer",
    )
)
LOGIN_REDIRECT_URL = "/admin/"
LOGIN_REDIRECT_URL_FAILURE = "/admin/login/?sso=refused"
STAFF_PASSWORD_LOGIN = env_bool("STAFF_PASSWORD_LOGIN", False)
IDP_FALLBACK_MINUTES = env_int_between("IDP_FALLBACK_MINUTES", 15, 0, 24 * 60)
IDP_RECHECK_SECONDS = env_int_between("IDP_RECHECK_SECONDS", 60, 0, 3600)
BREAK_GLASS_USERNAME = env_str("BREAK_GLASS_USERNAME", "")
# The bundle guardrail worker checks each bundle against its parts this often.
BUNDLE_CHECK_MINUTES = env_int("BUNDLE_CHECK_MINUTES", 5)
NOTIFICATION_BACKOFF_BASE_SECONDS = env_int("NOTIFICATION_BACKOFF_BASE_SECONDS", 60)
NOTIFICATION_BACKOFF_CAP_SECONDS = env_int("NOTIFICATION_BACKOFF_CAP_SECONDS", 3600)
# Push tokens: clean up above this many invalid (docs/runbooks/bookings-payments-notifications.md).
PUSH_INVALID_TOKENS_CLEANUP_THRESHOLD = env_int("PUSH_INVALID_TOKENS_CLEANUP_THRESHOLD", 5)
PUSH_INVALID_TOKEN_MAX_AGE_DAYS = env_int("PUSH_INVALID_TOKEN_MAX_AGE_DAYS", 7)
# Running campaigns with no progress this long stall (docs/runbooks/campaign-dispatcher-stalls.md).
CAMPAIGN_STALL_AFTER_SECONDS = env_int("CAMPAIGN_STALL_AFTER_SECONDS", 300)
CAMPAIGN_TARGET_MAX_ATTEMPTS = env_int("CAMPAIGN_TARGET_MAX_ATTEMPTS", 5)
# Targets a request may carry (400 above); a list above CAMPAIGN_INLINE_TARGETS is imported
# after the request, CAMPAIGN_IMPORT_BATCH_SIZE a transaction; the campaign waits for it.
CAMPAIGN_MAX_TARGETS_PER_REQUEST = env_int_between("CAMPAIGN_MAX_TARGETS_PER_REQUEST", 50_000, 1)
CAMPAIGN_INLINE_TARGETS = env_int_between("CAMPAIGN_INLINE_TARGETS", 1000, 1)
CAMPAIGN_IMPORT_BATCH_SIZE = env_int_between("CAMPAIGN_IMPORT_BATCH_SIZE", 1000, 1)

IDEMPOTENCY_KEY_TTL_SECONDS = env_int("IDEMPOTENCY_KEY_TTL_SECONDS", 24 * 3600)
# An in-flight key older than this belongs to a request that died; a retry may take it over.
IDEMPOTENCY_IN_FLIGHT_TIMEOUT_SECONDS = env_int("IDEMPOTENCY_IN_FLIGHT_TIMEOUT_SECONDS", 300)

# Request bodies: larger ones get 413 (webhooks included); deeper JSON nesting gets 400.
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 1024 * 1024)
API_MAX_JSON_DEPTH = env_int("API_MAX_JSON_DEPTH", 64)
# Django's own limit on a body read outside DRF (form posts, the Stripe webhook).
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES

API_LIST_DEFAULT_LIMIT = 50
API_LIST_MAX_LIMIT = 500

# /metrics answers a scraper bearing this token or calling from these networks (comma
# separated CIDRs), and nobody else; both empty means /metrics is closed.
METRICS_BEARER_TOKEN = env_str("METRICS_BEARER_TOKEN", "")
METRICS_ALLOWED_CIDRS = env_cidrs("METRICS_ALLOWED_CIDRS", "")
# Proxies whose X-Forwarded-For names the client (CIDRs); empty: REMOTE_ADDR is the client.
TRUSTED_PROXIES = env_cidrs("TRUSTED_PROXIES", "")

LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
# structlog renders every line as JSON with request_id and traceparent bound by context.py.
LOGGING_CONFIG = None
# Log searches look for service=smplat-api (docs/runbooks/incident-response.md).
SERVICE_NAME = env_str("SERVICE_NAME", "smplat-api")
# OpenTelemetry: spans go to this OTLP/HTTP collector when set (e.g. http://otel:4318).
OTEL_EXPORTER_OTLP_ENDPOINT = env_str("OTEL_EXPORTER_OTLP_ENDPOINT", "")
configure_logging(LOG_LEVEL, SERVICE_NAME, env_str("LOG_FORMAT", "json"))  # or console
