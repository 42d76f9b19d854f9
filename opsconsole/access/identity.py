"""Staff sign-in through the identity provider, and the console while it is down
(docs/runbooks/identity-provider-outage.md).

Staff sign in with OpenID Connect (mozilla-django-oidc's code flow with PKCE); the
provider's groups claim gives their console role on every sign-in and every re-check, so a
person removed from a group loses the role within IDP_RECHECK_SECONDS. Staff have no local
password once the provider is configured (STAFF_PASSWORD_LOGIN turns passwords back on).

While the provider is down (connection refused, a timeout or a 5xx: the specification's
"unavailable", unlike a 4xx, which is an answer) the specification's fallback holds: a
session the provider verified within IDP_FALLBACK_MINUTES keeps working from the session
store, each request marked so (`auth_fallback` on its audit rows, a notice on every page);
an older one is signed out. New sign-ins get a page that says so, and the break-glass local
account (BREAK_GLASS_USERNAME, none by default) may sign in with its password, only then,
with a critical alert and an audit row. readyz's `identity_provider` is degraded meanwhile.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests
import structlog
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import get_user_model, logout
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.core.exceptions import SuspiciousOperation, ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from opsconsole.evidence import audit
from opsconsole.http.context import auth_fallback_var
from opsconsole.monitoring.alerts import alert_raise
from opsconsole.monitoring.error_categories import severity_of
from opsconsole.monitoring.health import ComponentHealth

logger = structlog.get_logger(__name__)

# A probe's verdict is shared this long (every page of the sign-in flow and readyz ask).
PROBE_CACHE_SECONDS = 5
_PROBE_KEY = "identity-provider-probe"
# Session keys: when the provider last vouched for the session, when it was last asked,
# and why the session runs on the fallback (absent when it does not).
VERIFIED_AT = "idp_verified_at"
CHECKED_AT = "idp_checked_at"
FALLBACK_REASON = "idp_fallback_reason"
# A break-glass session: why the provider was down when it began. It ends once the provider
# answers again.
BREAK_GLASS = "idp_break_glass"


def sso_configured() -> bool:
    return bool(
        settings.OIDC_RP_CLIENT_ID
        and settings.OIDC_OP_AUTHORIZATION_ENDPOINT
        and settings.OIDC_OP_TOKEN_ENDPOINT
        and settings.OIDC_OP_USER_ENDPOINT
        and settings.OIDC_OP_JWKS_ENDPOINT
    )


def unavailable_reason(exc: BaseException) -> str | None:
    """Why the provider counts as down, or None when it answered (a 4xx is an answer)."""
    if isinstance(exc, requests.Timeout):
        return "timeout"
    if isinstance(exc, requests.ConnectionError):
        return "connection_refused"
    response = getattr(exc, "response", None)
    if isinstance(exc, requests.HTTPError) and response is not None:
        return f"http_{response.status_code}" if response.status_code >= 500 else None
    if isinstance(exc, (requests.RequestException, ValueError)):
        return "invalid_response"
    return None


@dataclass(frozen=True)
class ProviderState:
    up: bool
    reason: str = ""


def probe() -> ProviderState:
    """Is the provider answering? Its key set is asked (what every sign-in needs first)."""
    cached = cache.get(_PROBE_KEY)
    if cached is not None:
        return ProviderState(**cached)
    try:
        response = requests.get(
            settings.OIDC_OP_JWKS_ENDPOINT, timeout=min(settings.OIDC_TIMEOUT, 1.5)
        )
        response.raise_for_status()
        response.json()
        state = ProviderState(up=True)
    except (requests.RequestException, ValueError) as exc:
        state = ProviderState(up=False, reason=unavailable_reason(exc) or "refused")
    cache.set(_PROBE_KEY, {"up": state.up, "reason": state.reason}, PROBE_CACHE_SECONDS)
    return state


def provider_down() -> str | None:
    """The reason the configured provider is down, or None (up, or not configured)."""
    if not sso_configured():
        return None
    state = probe()
    return None if state.up else state.reason


def identity_provider_health() -> ComponentHealth:
    if not sso_configured():
        return ComponentHealth("ready", {"configured": False})
    state = probe()
    if state.up:
        return ComponentHealth("ready", {"configured": True})
    return ComponentHealth(
        "degraded",
        {
            "configured": True,
            "reason": state.reason,
            "note": (
                f"sessions verified within {settings.IDP_FALLBACK_MINUTES} minutes keep "
                "working; new sign-ins wait for the provider"
            ),
        },
    )


# ------------------------------------------------------------------------ roles from claims


def console_groups(claims: dict[str, Any]) -> set[str]:
    """The console roles the provider's groups claim gives."""
    groups = claims.get(settings.OIDC_GROUPS_CLAIM) or []
    if not isinstance(groups, list):
        return set()
    mapping = settings.OIDC_ROLE_GROUPS
    return {mapping[name] for name in groups if isinstance(name, str) and name in mapping}


def apply_roles(user: Any, claims: dict[str, Any], *, event: str, always_audit: bool) -> None:
    """Give `user` exactly the console roles the claims map to: audited when they change,
    and at every sign-in (`always_audit`)."""
    wanted = console_groups(claims)
    role_names = set(settings.OIDC_ROLE_GROUPS.values())
    with transaction.atomic():
        held = set(user.groups.filter(name__in=role_names).values_list("name", flat=True))
        changed = held != wanted or not user.is_staff
        if changed:
            user.groups.remove(*Group.objects.filter(name__in=held - wanted))
            user.groups.add(*Group.objects.filter(name__in=wanted - held))
            user.is_staff = bool(wanted)
            user.save(update_fields=["is_staff"])
        if not (changed or always_audit):
            return
        audit.record(
            event,
            obj=user,
            before={"roles": sorted(held)},
            after={"roles": sorted(wanted)},
            actor=user,
            metadata={"provider_subject": str(claims.get("sub", ""))},
        )


class IdentityProviderBackend(OIDCAuthenticationBackend):
    """mozilla-django-oidc's backend, answering nothing until the provider is configured,
    matching people by the provider's email claim and giving them the roles its groups
    claim maps to. A provider that is down is noted on the request for the callback's page
    rather than raised as a 500."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.configured = sso_configured()
        self.UserModel = get_user_model()
        if self.configured:
            super().__init__(*args, **kwargs)

    def authenticate(self, request: HttpRequest | None, **kwargs: Any) -> Any:
        if not self.configured or request is None:
            return None
        try:
            return super().authenticate(request, **kwargs)
        except (requests.RequestException, ValueError) as exc:
            reason = unavailable_reason(exc)
            if reason is None:
                return None  # the provider refused the code: a failed sign-in
            setattr(request, "identity_provider_down", reason)  # noqa: B010
            logger.warning("identity_provider_unavailable", stage="sign_in", reason=reason)
            return None

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        if not claims.get("email"):
            return False
        if not console_groups(claims):
            # Someone the provider knows but gives no console role is not staff here; the
            # login page says so (and only then: other failures say to sign in again).
            setattr(self.request, "sso_no_role", True)  # noqa: B010
            return False
        return True

    def create_user(self, claims: dict[str, Any]) -> Any:
        username = str(claims.get("preferred_username") or claims["email"]).strip()[:150]
        if self.UserModel.objects.filter(username=username).exists():
            username = f"{username}@sso"[:150]
        user = self.UserModel.objects.create_user(username=username, email=claims["email"])
        user.set_unusable_password()  # staff prove who they are at the provider only
        user.save(update_fields=["password"])
        return self.update_user(user, claims)

    def update_user(self, user: Any, claims: dict[str, Any]) -> Any:
        apply_roles(user, claims, event="access.sso.signed_in", always_audit=True)
        now = time.time()
        self.request.session[VERIFIED_AT] = now
        self.request.session[CHECKED_AT] = now
        self.request.session.pop(FALLBACK_REASON, None)
        return user


# --------------------------------------------------------------------- session re-checks


def _userinfo(access_token: str) -> dict[str, Any]:
    response = requests.get(
        settings.OIDC_OP_USER_ENDPOINT,
        headers={"Authorization": f"Bearer {access_token}"},
        timeout=settings.OIDC_TIMEOUT,
    )
    response.raise_for_status()
    claims = response.json()
    if not isinstance(claims, dict):
        raise ValueError("userinfo is not an object")
    return claims


def unavailable_page(
    request: HttpRequest, reason: str, *, signed_out: bool = False
) -> HttpResponse:
    return render(
        request,
        "admin/identity_provider_unavailable.html",
        {
            "reason": reason,
            "signed_out": signed_out,
            "provider_name": settings.OIDC_PROVIDER_NAME,
            "fallback_minutes": settings.IDP_FALLBACK_MINUTES,
            "break_glass": bool(settings.BREAK_GLASS_USERNAME),
            "title": "Sign-in is unavailable",
        },
        status=503,
    )


class IdentitySessionMiddleware:
    """Re-checks a provider-verified session with the provider every IDP_RECHECK_SECONDS:
    still vouched for, it goes on with the roles the provider gives now; refused, it is
    signed out; the provider down, it runs on the cached session until IDP_FALLBACK_MINUTES
    after its last verification, every audit row it writes marked `auth_fallback`."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        session = getattr(request, "session", None)
        if session is None or not request.user.is_authenticated:
            return self.get_response(request)
        if session.get(BREAK_GLASS):
            if provider_down() is None:  # the provider answers again: break-glass ends
                logout(request)
                return redirect("/admin/login/?sso=break_glass_ended")
            mark = {"session": "break_glass", "provider_down": session[BREAK_GLASS]}
            return self._marked(request, mark)
        if VERIFIED_AT not in session or not sso_configured():
            return self.get_response(request)
        refusal = self._recheck(request)
        if refusal is not None:
            return refusal
        reason = session.get(FALLBACK_REASON)
        if not reason:
            return self.get_response(request)
        return self._marked(request, {"session": "cached", "provider_down": reason})

    def _marked(self, request: HttpRequest, mark: dict[str, str]) -> HttpResponse:
        """Answer the request with every audit row it writes marked (and its pages saying)
        how the person signed in while the provider was down."""
        setattr(request, "auth_fallback", mark)  # noqa: B010
        token = auth_fallback_var.set(mark)
        try:
            return self.get_response(request)
        finally:
            auth_fallback_var.reset(token)

    def _recheck(self, request: HttpRequest) -> HttpResponse | None:
        session = request.session
        now = time.time()
        if now - float(session.get(CHECKED_AT, 0)) >= settings.IDP_RECHECK_SECONDS:
            session[CHECKED_AT] = now
            try:
                claims = _userinfo(str(session.get("oidc_access_token", "")))
            except (requests.RequestException, ValueError) as exc:
                reason = unavailable_reason(exc)
                if reason is None:  # the provider answered: it no longer vouches for them
                    logout(request)
                    return redirect("/admin/login/?sso=expired")
                if session.get(FALLBACK_REASON) != reason:
                    logger.warning("identity_provider_unavailable", stage="session", reason=reason)
                session[FALLBACK_REASON] = reason
            else:
                if not console_groups(claims):
                    logout(request)
                    return redirect("/admin/login/?sso=refused")
                apply_roles(
                    request.user, claims, event="access.sso.session_verified", always_audit=False
                )
                session[VERIFIED_AT] = now
                session.pop(FALLBACK_REASON, None)
        reason = session.get(FALLBACK_REASON)
        if reason and now - float(session[VERIFIED_AT]) > settings.IDP_FALLBACK_MINUTES * 60:
            logout(request)
            return unavailable_page(request, reason, signed_out=True)
        return None


def sign_in(request: HttpRequest) -> dict[str, Any]:
    """Template context: the sign-in button on the login page, and the notice on every page
    of a session running on the fallback."""
    context: dict[str, Any] = {"sso_enabled": sso_configured()}
    if not context["sso_enabled"]:
        return context
    context["sso_provider_name"] = settings.OIDC_PROVIDER_NAME
    mark = getattr(request, "auth_fallback", None)
    if mark and mark["session"] == "break_glass":
        context["identity_fallback"] = {"break_glass": True, "reason": mark["provider_down"]}
    elif mark:
        verified = float(request.session.get(VERIFIED_AT, 0))
        until = datetime.fromtimestamp(
            verified + settings.IDP_FALLBACK_MINUTES * 60, tz=timezone.get_current_timezone()
        )
        context["identity_fallback"] = {"reason": mark["provider_down"], "until": until}
    return context


# ------------------------------------------------------------------ sign-in views and form


class SignInStartView(OIDCAuthenticationRequestView):
    """Sends the browser to the provider, or, while it is down, says so here instead of
    sending it to a page that will not load."""

    def __init__(self, **kwargs: Any) -> None:
        if sso_configured():
            super().__init__(**kwargs)

    def get(self, request: HttpRequest) -> HttpResponse:
        if not sso_configured():
            return redirect("/admin/login/")
        reason = provider_down()
        if reason:
            return unavailable_page(request, reason)
        return super().get(request)


class SignInCallbackView(OIDCAuthenticationCallbackView):
    def get(self, request: HttpRequest) -> HttpResponse:
        if not sso_configured():
            return redirect("/admin/login/")
        try:
            return super().get(request)
        except SuspiciousOperation:
            # A state this browser did not start (a callback replayed, or from another
            # tab's sign-in): not an attack to answer with a bare 400, a sign-in to redo.
            return redirect("/admin/login/?sso=failed")

    def login_failure(self) -> HttpResponse:
        reason = getattr(self.request, "identity_provider_down", None)
        if reason:
            return unavailable_page(self.request, reason)
        if getattr(self.request, "sso_no_role", False):
            return super().login_failure()  # LOGIN_REDIRECT_URL_FAILURE: ?sso=refused
        # A callback used twice, one that took too long, a code the provider refused.
        return redirect("/admin/login/?sso=failed")


def password_refusal(username: str) -> ValidationError | None:
    """Why the admin's password form may not be used for `username`, or None. Asked before
    the password is checked, so the answer says nothing about the password: a right one and
    a wrong one read the same, and no one learns a staff password from this form."""
    if not sso_configured() or settings.STAFF_PASSWORD_LOGIN:
        return None
    name = settings.OIDC_PROVIDER_NAME
    if not settings.BREAK_GLASS_USERNAME or username != settings.BREAK_GLASS_USERNAME:
        return ValidationError(
            f"Staff sign in through {name}: use “Sign in with {name}”.", code="sso_only"
        )
    if provider_down() is None:
        return ValidationError(
            f"The break-glass account signs in only while {name} is down; it is answering, "
            f"so use “Sign in with {name}”.",
            code="break_glass_provider_up",
        )
    return None


def check_password_sign_in(request: HttpRequest | None, user: Any) -> None:
    """Staff sign in at the provider once it is configured. The break-glass account may use
    its password only while the provider is down; that sign-in raises a critical alert and
    writes an audit row. Raises ValidationError when the password may not be used."""
    if not sso_configured() or settings.STAFF_PASSWORD_LOGIN or not user.is_staff:
        return
    refusal = password_refusal(user.get_username())
    if refusal is not None:
        raise refusal
    reason = provider_down() or "unknown"
    with transaction.atomic():
        audit.record(
            "access.break_glass.signed_in",
            obj=user,
            actor=user,
            after={"provider_down": reason},
            reason=f"identity provider down ({reason})",
        )
        alert_raise(
            kind="break-glass-sign-in",
            severity=severity_of("break_glass_sign_in"),
            obj=user,
            message=(
                f"Break-glass account {user.get_username()} signed in while the identity "
                f"provider was down ({reason}); confirm who it was and why."
            ),
            details={"provider_down": reason},
        )
    if request is not None:
        # Marks the session (kept through login), which ends once the provider answers.
        request.session[BREAK_GLASS] = reason
    logger.critical("break_glass_sign_in", username=user.get_username(), reason=reason)


class StaffSignInForm(AdminAuthenticationForm):
    """The admin's password form, refusing staff passwords once the provider is configured
    (but for the break-glass account while the provider is down)."""

    def clean(self) -> dict[str, Any]:
        refusal = password_refusal(str(self.cleaned_data.get("username") or ""))
        if refusal is not None:
            raise refusal
        return super().clean()

    def confirm_login_allowed(self, user: Any) -> None:
        super().confirm_login_allowed(user)
        check_password_sign_in(self.request, user)
