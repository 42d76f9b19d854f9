"""API token authentication: hashed, expiring tokens (django-rest-knox), failed attempts
counted and throttled per address, and refused while the user is locked out."""

from __future__ import annotations

import binascii
import functools
import ipaddress
import re
from hmac import compare_digest
from typing import Any

from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone
from knox.auth import TokenAuthentication
from knox.models import AuthToken
from knox.signals import token_expired
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed, Throttled
from rest_framework.request import Request

from opsconsole.access.auth_backends import permission_names_column, prime_permission_cache
from opsconsole.access.rate_counters import rate_hit
from opsconsole.db.model_fields import column, concrete_field
from opsconsole.db.prepared import RowReader, fetch_prepared
from opsconsole.http.client_address import client_ip

# One budget per client address for every kind of credential (API tokens, station keys): a
# guesser gains nothing by alternating between them.
FAILURES_KEY = "auth:credential-failures:{address}"


def credential_failure_refusal(address: str) -> Throttled | None:
    """Count a failed credential (a token, a station key) from `address`: the 429 to answer
    once the address is past its limit (None: answer the 401)."""
    window = settings.AUTH_TOKEN_FAILURE_WINDOW_SECONDS
    hit = rate_hit(FAILURES_KEY.format(address=address), window)
    limit = settings.AUTH_TOKEN_FAILURE_LIMIT
    if hit.allowed(limit):
        return None
    return Throttled(
        wait=hit.wait_seconds(limit),
        detail="Too many failed credential attempts from this address.",
    )


def expired_api_tokens_purge() -> int:
    """Delete expired API tokens (they authenticate no one); the retention worker's daily
    step, so authentication need not sweep a user's other tokens on every request."""
    deleted, _ = AuthToken.objects.filter(expiry__lt=timezone.now()).delete()
    return deleted


def lockouts(*, username: Any, address: str) -> QuerySet[AccessAttempt] | None:
    """django-axes's lockout records for this user from this address (the lockout
    parameters are username and address together), for one indexed EXISTS instead of axes'
    aggregate; None for an address that cannot have any (a test client, a broken proxy)."""
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return None
    return AccessAttempt.objects.filter(
        username=username,
        ip_address=address,
        failures_since_start__gte=settings.AXES_FAILURE_LIMIT,
        attempt_time__gte=timezone.now() - settings.AXES_COOLOFF_TIME,
    )


TOKEN_PREFIXES = (b"token", b"bearer")


def _knox_key_shape() -> re.Pattern[bytes]:
    """What knox issues (its prefix, then hex of its configured length): only a bearer token
    of this shape is taken for an API token."""
    from knox.settings import knox_settings

    prefix = re.escape(knox_settings.TOKEN_PREFIX.encode())
    return re.compile(prefix + rb"[0-9a-f]{%d}" % knox_settings.AUTH_TOKEN_CHARACTER_LENGTH)


KNOX_KEY_RE = _knox_key_shape()


class ApiTokenAuthentication(TokenAuthentication):
    """`Authorization: Token <key>` (or `Bearer <key>`, what OpenAPI clients send): knox's
    hashed, expiring token, plus three guards.

    - An address with too many failed token attempts in the window gets 429, like failed
      logins, so tokens cannot be guessed at the API's full rate. Only failures are counted
      and checked: a request with a valid token costs no counter at all.
    - A token whose user is locked out (django-axes, per user and address) is refused
      while the lockout lasts: a stolen password's lockout is not bypassed with a token.
    - A key that is not even UTF-8 is a 401, never a 500.
    """

    address = ""  # the caller's, set per request (DRF makes an instance per request)

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        header = get_authorization_header(request).split()
        if not header or header[0].lower() not in TOKEN_PREFIXES:
            return None
        if header[0].lower() == b"bearer" and not (
            len(header) == 2 and KNOX_KEY_RE.fullmatch(header[1])
        ):
            return None  # another scheme's bearer token (the monitoring token on readyz)
        address = self.address = client_ip(request)
        try:
            if len(header) != 2:
                raise AuthenticationFailed("The header is the prefix, a space and the token.")
            authenticated = self.authenticate_credentials(header[1])
        except (UnicodeDecodeError, AuthenticationFailed) as exc:
            refusal = credential_failure_refusal(address)
            if refusal is not None:
                raise refusal from exc
            if isinstance(exc, AuthenticationFailed):
                raise
            raise AuthenticationFailed("Invalid token.") from exc
        if authenticated is None:
            return None
        user, token = authenticated
        if getattr(token, "locked_out", False):
            raise AuthenticationFailed("This account is locked out; try again later.")
        return user, token

    def authenticate_credentials(self, token: bytes) -> tuple[Any, AuthToken]:
        """knox's lookup, with the user, the user's permissions and whether the user is
        locked out from this address read in the same query (knox reads the user lazily,
        and each of the others was a statement of its own on every request). knox's
        AUTO_REFRESH is off here (REST_KNOX): tokens expire on the date they were issued
        with."""
        from knox.crypto import hash_token
        from knox.settings import CONSTANTS

        key = token.decode("utf-8")
        candidates = self._candidates(key[: CONSTANTS.TOKEN_KEY_LENGTH])
        for auth_token in candidates:
            if self._cleanup_token(auth_token):
                continue
            try:
                digest = hash_token(key)
            except (TypeError, binascii.Error) as exc:
                raise AuthenticationFailed("Invalid token.") from exc
            if compare_digest(digest, auth_token.digest):
                names = getattr(auth_token, "permission_names", None)
                if names is not None:
                    prime_permission_cache(auth_token.user, names)
                return self.validate_user(auth_token)
        raise AuthenticationFailed("Invalid token.")

    def _candidates(self, token_key: str) -> list[AuthToken]:
        """The tokens with this key prefix, each with its user, `permission_names` and
        `locked_out` read alongside. On PostgreSQL one prepared statement of fixed text (the
        ORM compiling this query cost a millisecond of every request); elsewhere the ORM."""
        if connection.vendor != "postgresql":
            candidates = AuthToken.objects.select_related("user").filter(token_key=token_key)
            locked = lockouts(username=OuterRef("user__username"), address=self.address)
            if locked is not None:
                candidates = candidates.annotate(locked_out=Exists(locked))
            return list(candidates)
        try:
            address: str | None = str(ipaddress.ip_address(self.address))
        except ValueError:
            address = None  # a test client or a broken proxy: no lockout can name it
        sql, token_rows, user_rows = _token_lookup()
        rows = fetch_prepared(
            sql,
            {
                "token_key": token_key,
                "address": address,
                "failure_limit": settings.AXES_FAILURE_LIMIT,
                "since": timezone.now() - settings.AXES_COOLOFF_TIME,
            },
        )
        found = []
        for row in rows:
            auth_token = token_rows.read(row)
            auth_token.user = user_rows.read(row, token_rows.width)
            # Read with the token, for authenticate() and the permission cache.
            locked_out, permission_names = row[-2:]
            setattr(auth_token, "locked_out", locked_out)  # noqa: B010
            setattr(auth_token, "permission_names", permission_names)  # noqa: B010
            found.append(auth_token)
        return found

    def _cleanup_token(self, auth_token: AuthToken) -> bool:
        """Whether the token has expired (then it is deleted). knox also sweeps the user's
        other tokens here, two statements on every request; expired_api_tokens_purge does
        that once a day instead."""
        if auth_token.expiry is None or auth_token.expiry >= timezone.now():
            return False
        username = auth_token.user.get_username()
        auth_token.delete()
        token_expired.send(sender=type(self), username=username, source="auth_token")
        return True


@functools.cache
def _token_lookup() -> tuple[str, RowReader, RowReader]:
    """knox's token lookup joined to the user, axes' lockout EXISTS (username and address
    together, as axes locks out) and the user's permission names; with its row readers."""
    quote = connection.ops.quote_name
    user_model = get_user_model()
    token_rows, user_rows = RowReader(AuthToken), RowReader(user_model)
    username = quote(column(concrete_field(user_model, user_model.USERNAME_FIELD)))
    sql = (
        f"SELECT {token_rows.select_list('token')}, {user_rows.select_list('account')}, "
        f"EXISTS (SELECT 1 FROM {AccessAttempt._meta.db_table} attempt "
        f"WHERE attempt.username = account.{username} "
        "AND attempt.ip_address = %(address)s::inet "
        "AND attempt.failures_since_start >= %(failure_limit)s "
        "AND attempt.attempt_time >= %(since)s), "
        f"{permission_names_column('token.user_id')} "
        f"FROM {quote(AuthToken._meta.db_table)} token "
        f"JOIN {quote(user_model._meta.db_table)} account ON account.id = token.user_id "
        "WHERE token.token_key = %(token_key)s"
    )
    return sql, token_rows, user_rows


class AnonymousRateLimit(BaseAuthentication):
    """Last in the authentication chain: a request that brought no credentials counts
    against the anonymous rate before any permission check, so a flood of anonymous calls
    gets 429s, not an endless stream of cheap 401s. It never authenticates anyone."""

    def authenticate(self, request: Request) -> None:
        from opsconsole.access.throttles import AnonymousRateThrottle

        throttle = AnonymousRateThrottle()
        if not throttle.allow_request(request, None):  # type: ignore[arg-type]
            raise Throttled(wait=throttle.wait())
        return None
