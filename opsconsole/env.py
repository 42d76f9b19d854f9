"""Reading settings from the environment: typed, and refusing a malformed value at start-up."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit


class ImproperlyConfiguredEnv(RuntimeError):
    """A malformed environment value: fail at start-up, not at 3 a.m. in a worker."""


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfiguredEnv(f"{name}={raw!r} is not a boolean (use true/false)")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfiguredEnv(f"{name}={raw!r} is not an integer") from exc


def env_int_between(name: str, default: int, low: int, high: int | None = None) -> int:
    """An integer from `low` (to `high`): a limit outside its range fails at start-up."""
    value = env_int(name, default)
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"{low} or more"
        raise ImproperlyConfiguredEnv(f"{name} must be {bounds}, not {value}")
    return value


def proxy_ssl_header() -> tuple[str, str] | None:
    """SECURE_PROXY_SSL_HEADER as HEADER,value (unset: None, Django's default)."""
    parts = env_list("SECURE_PROXY_SSL_HEADER", "")
    if not parts:
        return None
    if len(parts) != 2:
        raise ImproperlyConfiguredEnv("SECURE_PROXY_SSL_HEADER must be HEADER,value")
    return (parts[0], parts[1])


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = (os.environ.get(name) or default).strip().lower()
    if value not in choices:
        raise ImproperlyConfiguredEnv(f"{name} must be {' or '.join(choices)}, not {value!r}")
    return value


def env_list(name: str, default: str) -> list[str]:
    return [part.strip() for part in env_str(name, default).split(",") if part.strip()]


def env_cidrs(name: str, default: str) -> list[str]:
    """A comma separated list of networks (CIDRs or single addresses), each checked now."""
    import ipaddress

    cidrs = env_list(name, default)
    for cidr in cidrs:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError as exc:
            raise ImproperlyConfiguredEnv(f"{name}: {cidr!r} is not a network") from exc
    return cidrs


def database_from_url(url: str) -> dict[str, object]:
    """Parse DATABASE_URL; only PostgreSQL and SQLite are supported."""
    parts = urlsplit(url)
    if parts.scheme in {"postgres", "postgresql"}:
        options: dict[str, object] = dict(parse_qsl(parts.query))
        # Behind PgBouncer in transaction pooling mode a session is not the client's own:
        # no server-side cursors and no prepared statements (opsconsole.db.prepared reads this
        # key; Django leaves psycopg's automatic preparing off), both living in a session.
        pooled = env_bool("DATABASE_TRANSACTION_POOLING", False)
        if not pooled:
            # Django turns psycopg's preparing off (prepare_threshold None), which also
            # ignores an explicit prepare=True; a threshold never reached keeps the automatic
            # kind off and lets opsconsole.db.prepared ask for its statements.
            options.setdefault("prepare_threshold", 2**31 - 1)
        return {
            "ENGINE": "django.db.backends.postgresql",
            "TRANSACTION_POOLING": pooled,
            "DISABLE_SERVER_SIDE_CURSORS": pooled,
            "NAME": unquote(parts.path.lstrip("/")),
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
            "CONN_MAX_AGE": env_int("DATABASE_CONN_MAX_AGE", 0),
            "OPTIONS": {"connect_timeout": env_int("DATABASE_CONNECT_TIMEOUT", 5), **options},
        }
    if parts.scheme == "sqlite":
        return sqlite_database(Path(unquote(parts.path)))
    raise ImproperlyConfiguredEnv(f"DATABASE_URL scheme {parts.scheme!r} is not supported")


def sqlite_database(path: Path) -> dict[str, object]:
    # IMMEDIATE takes the write lock at BEGIN, so two writers queue instead of one failing
    # with "database is locked" halfway through a transaction.
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path),
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
    }


# Keys that were ever public (an old .env.example's) or too short to be secret are refused.
PUBLIC_SECRET_KEYS = {"dev-only-insecure-secret-key-change-me", "change-me", "secret"}


def secret_key_from_env(*, debug: bool) -> str:
    """SECRET_KEY, which signs sessions, password resets and django-q2's pickled tasks: a
    public value would let anyone forge all three, so production refuses to start without a
    long random one. Debug runs get a fixed key that production would refuse."""
    secret_key = env_str("SECRET_KEY", "")
    if not secret_key:
        if not debug:
            raise ImproperlyConfiguredEnv(
                "SECRET_KEY is not set. Set the SECRET_KEY environment variable (or put it in "
                ".env) to a long random value "
                "(python -c 'import secrets; print(secrets.token_urlsafe(50))')"
            )
        return "debug-only-" + "insecure-key-never-used-with-debug-off"
    if not debug and (secret_key in PUBLIC_SECRET_KEYS or len(secret_key) < 32):
        raise ImproperlyConfiguredEnv(
            "SECRET_KEY is a public or short value; set it to at least 32 random characters"
        )
    return secret_key


def anymail_settings(*, timeout_seconds: int) -> dict[str, object]:
    """django-anymail's settings for the email channel (EMAIL_PROVIDER=anymail). Resend by
    default; its API address is settable (tests point it at a local server). Tracking webhooks
    need RESEND_SIGNING_SECRET (or basic auth, WEBHOOK_SECRET)."""
    return {
        "RESEND_API_KEY": env_str("RESEND_API_KEY", ""),
        "RESEND_API_URL": env_str("RESEND_API_URL", "https://api.resend.com/"),
        "RESEND_SIGNING_SECRET": env_str("RESEND_SIGNING_SECRET", "") or None,
        "WEBHOOK_SECRET": env_str("ANYMAIL_WEBHOOK_SECRET", "") or None,
        # (connect, read) seconds for each send: a provider that hangs is a timeout.
        "REQUESTS_TIMEOUT": timeout_seconds,
    }


CHANNELS = ("email", "sms", "whatsapp", "push")
# Providers a channel can name besides the generic JSON endpoint.
SPECIFIC_PROVIDERS = {
    "email": {"anymail"},
    "sms": {"twilio"},
    "whatsapp": {"cloud_api"},
    "push": {"fcm"},
}


def notification_channels() -> dict[str, dict[str, str]]:
    """Each message channel's NOTIFICATIONS_<CHANNEL>_URL and _API_KEY, and its
    <CHANNEL>_PROVIDER: "" or http (the JSON endpoint), none (switched off on purpose: its
    messages are skipped, not an error), or for email anymail (django-anymail's ESP)."""
    channels = {}
    for channel in CHANNELS:
        provider = env_str(f"{channel.upper()}_PROVIDER", "").strip().lower()
        allowed = {"", "http", "none"} | SPECIFIC_PROVIDERS.get(channel, set())
        if provider not in allowed:
            choices = " or ".join(sorted(allowed - {""}))
            raise ImproperlyConfiguredEnv(f"{channel.upper()}_PROVIDER must be {choices}")
        channels[channel] = {
            "url": env_str(f"NOTIFICATIONS_{channel.upper()}_URL", ""),
            "api_key": env_str(f"NOTIFICATIONS_{channel.upper()}_API_KEY", ""),
            "provider": provider,
        }
    return channels


def twilio_settings() -> dict[str, str]:
    """SMS through Twilio (SMS_PROVIDER=twilio). TWILIO_API_BASE replaces Twilio's address
    when set (a local server that speaks Twilio's API, in tests)."""
    return {
        "ACCOUNT_SID": env_str("TWILIO_ACCOUNT_SID", ""),
        "AUTH_TOKEN": env_str("TWILIO_AUTH_TOKEN", ""),
        "FROM_NUMBER": env_str("TWILIO_FROM_NUMBER", ""),
        "API_BASE": env_str("TWILIO_API_BASE", ""),
    }


def whatsapp_settings() -> dict[str, str]:
    """WhatsApp through Meta's Cloud API (WHATSAPP_PROVIDER=cloud_api); the API's address is
    settable (a local stand-in in tests)."""
    return {
        "PHONE_NUMBER_ID": env_str("WHATSAPP_PHONE_NUMBER_ID", ""),
        "ACCESS_TOKEN": env_str("WHATSAPP_ACCESS_TOKEN", ""),
        "API_BASE": env_str("WHATSAPP_API_BASE", "https://graph.facebook.com"),
        "API_VERSION": env_str("WHATSAPP_API_VERSION", "v21.0"),
        "LANGUAGE": env_str("WHATSAPP_TEMPLATE_LANGUAGE", "en"),
    }


def fcm_settings() -> dict[str, str]:
    """Push through FCM's HTTP v1 API (PUSH_PROVIDER=fcm): the Firebase project and a service
    account (its JSON, or the path of its file), whose token URI google-auth calls."""
    account = env_str("FCM_SERVICE_ACCOUNT", "")
    if account and not account.lstrip().startswith("{") and Path(account).is_file():
        account = Path(account).read_text()
    return {
        "PROJECT_ID": env_str("FCM_PROJECT_ID", ""),
        "SERVICE_ACCOUNT": account,
        "API_BASE": env_str("FCM_API_BASE", "https://fcm.googleapis.com"),
    }


def spectacular_settings() -> dict[str, object]:
    """drf-spectacular's settings: the API's title and the schemes a client can use (the
    anonymous rate limit in the chain is not one); routes that are not DRF views (anymail's
    tracking webhook) are added by a hook from what the apps register."""
    return {
        "TITLE": "Ops Console API",
        "DESCRIPTION": "Failure recovery for bookings, payments, notifications and integrations.",
        "VERSION": "1.0.0",
        "SERVE_INCLUDE_SCHEMA": False,
        # Swagger UI and Redoc from the installed package, never a CDN: the docs work offline.
        "SWAGGER_UI_DIST": "SIDECAR",
        "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
        "REDOC_DIST": "SIDECAR",
        "AUTHENTICATION_WHITELIST": [
            "opsconsole.access.authentication.ApiTokenAuthentication",
            "rest_framework.authentication.SessionAuthentication",
            "payments.stations.StationCredentialAuthentication",
        ],
        # Incident status and severity share field names with other enums: named here.
        "ENUM_NAME_OVERRIDES": {
            "IncidentStatusEnum": ["open", "resolved"],
            "IncidentSeverityEnum": ["sev1", "sev2", "sev3"],
        },
        "POSTPROCESSING_HOOKS": [
            "drf_spectacular.hooks.postprocess_schema_enums",
            "opsconsole.http.schema.document_plain_routes",
            "opsconsole.http.schema.close_request_bodies",
        ],
    }


def worker_switches(*workers: str | tuple[str, str]) -> dict[str, bool]:
    """Each worker's kill switch default: `<WORKER>_ENABLED` (e.g. HOSTED_RECOVERY_WORKER_
    ENABLED), or lowercase (`hosted_recovery_worker_enabled`); unset means enabled. A (name,
    variable) pair names a variable that is not `<WORKER>_ENABLED`."""
    switches = {}
    for worker in workers:
        name, variable = worker if isinstance(worker, tuple) else (worker, "")
        variable = variable or f"{name.upper()}_ENABLED"
        lowercase = variable.lower()
        chosen = variable if os.environ.get(variable) not in (None, "") else lowercase
        switches[name] = env_bool(chosen, True)
    return switches


def q_cluster_settings(redis_url: str) -> dict[str, object]:
    """django-q2: the ORM broker by default, Redis when REDIS_URL is set. Its own retry is
    not our retry mechanism (the row is the source of truth): a failed wake is not re-sent."""
    timeout = env_int("Q_TIMEOUT", 300)
    broker = {"redis": redis_url} if redis_url else {"orm": "default"}
    return {
        "name": "opsconsole",
        "workers": env_int("Q_WORKERS", 2),
        "timeout": timeout,
        "retry": timeout + 60,
        "max_attempts": 1,
        "catch_up": False,
        "save_limit": 1000,
        "label": "Background tasks",
        **broker,
    }


def shared_cache(redis_url: str, table: str) -> dict[str, dict[str, object]]:
    """CACHES: Redis when configured, otherwise the database cache table."""
    if redis_url:
        return {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": redis_url,
            }
        }
    # Each write counts the table to decide on culling; the entries (probe results) are
    # few, so this bound is never reached in use.
    options = {"MAX_ENTRIES": env_int("DATABASE_CACHE_MAX_ENTRIES", 10000)}
    backend = "django.core.cache.backends.db.DatabaseCache"
    return {"default": {"BACKEND": backend, "LOCATION": table, "OPTIONS": options}}


BACKUP_DRILL_SCHEDULES = ("quarterly", "monthly", "weekly", "daily", "off")


def backup_drill_settings() -> dict[str, object]:
    """The backup drill (docs/runbooks/backup-restore-drill.md): where the dump goes off host
    (an S3-compatible bucket, credentials as boto3 reads them from AWS_*; else a directory on
    other storage), how often it runs, and how old the last passing drill may be before readyz
    is degraded."""
    return {
        "s3_bucket": env_str("BACKUP_S3_BUCKET", ""),
        "s3_endpoint_url": env_str("BACKUP_S3_ENDPOINT_URL", ""),
        "s3_prefix": env_str("BACKUP_S3_PREFIX", "opsconsole-backups/"),
        "s3_region": env_str("BACKUP_S3_REGION", ""),
        "copy_dir": env_str("BACKUP_COPY_DIR", ""),
        "schedule": env_choice("BACKUP_DRILL_SCHEDULE", "quarterly", BACKUP_DRILL_SCHEDULES),
        "output_dir": env_str("BACKUP_DRILL_OUTPUT_DIR", "var/backup-drill"),
        "max_age_days": env_int("BACKUP_DRILL_MAX_AGE_DAYS", 100),
    }
