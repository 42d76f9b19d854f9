"""The authorization matrix: every URL pattern against every role.

The resolver is walked, so a route added without a row here fails the suite. API rows name
the roles that may act; everyone else must get 401 or 403 and change nothing. Admin pages
follow one rule per kind of page: only staff get in, and a viewer's POST to any admin page
(actions, forms, history reverts, custom pages) changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import User
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from opsconsole.models import AuditEvent
from tests.helpers import station_client, token_client

ROLES = ("anonymous", "no_group", "station", "booking_client", "producer")
ROLES += ("viewer", "operator", "superuser")
STAFF = {"viewer", "operator", "superuser"}
EVERYONE = set(ROLES)
READERS = {"viewer", "operator", "superuser"}
OPERATORS = {"operator", "superuser"}
PEOPLE = EVERYONE - {"anonymous", "station"}  # a user's own things: never a station's


@dataclass(frozen=True)
class Row:
    method: str
    path: str
    allowed: set[str]
    body: dict = field(default_factory=dict)
    # Routes that answer a fixed status whoever calls (probes, docs, the catch-all).
    note: str = ""


# One row per non-admin URL pattern and method, keyed by the pattern as the resolver spells
# it (a tuple of rows for a route that answers several methods).
API_ROWS: dict[str, Row | tuple[Row, ...]] = {
    "metrics": Row("GET", "/metrics", set(), note="bearer token or network only"),
    "api/schema/": Row("GET", "/api/schema/", EVERYONE),
    "api/docs/": Row("GET", "/api/docs/", EVERYONE),
    "api/redoc/": Row("GET", "/api/redoc/", EVERYONE),
    "api/v1/health/livez": Row("GET", "/api/v1/health/livez", EVERYONE),
    "api/v1/health/readyz": Row("GET", "/api/v1/health/readyz", EVERYONE),
    "api/v1/auth/attempts": Row("GET", "/api/v1/auth/attempts", READERS),
    "api/v1/auth/lockout": Row("GET", "/api/v1/auth/lockout", READERS),
    "api/v1/auth/tokens": Row("GET", "/api/v1/auth/tokens", PEOPLE),
    "api/v1/auth/tokens/<str:token_key>": Row("DELETE", "/api/v1/auth/tokens/nokey", PEOPLE),
    "api/v1/incidents": Row("GET", "/api/v1/incidents", READERS),
    "api/v1/audit-events": Row("GET", "/api/v1/audit-events", READERS),
    "api/v1/incidents/<str:incident_id>/export": Row("GET", "/api/v1/incidents/1/export", READERS),
    "api/v1/failures/groups/<str:fingerprint>/summary": Row(
        "POST", "/api/v1/failures/groups/0123abcd/summary", OPERATORS, {}
    ),
    "api/v1/incidents/<str:incident_id>/draft-write-up": Row(
        "POST", "/api/v1/incidents/1/draft-write-up", OPERATORS, {}
    ),
    "api/v1/billing/sessions": Row(
        "POST",
        "/api/v1/billing/sessions",
        {"producer", "operator", "superuser"},
        {"reference": "matrix-1", "amount": "10.00", "currency": "EUR"},
    ),
    "api/v1/vouchers": Row(
        "POST",
        "/api/v1/vouchers",
        {"producer", "operator", "superuser"},
        {"description": "matrix", "value": "5.00"},
    ),
    "api/v1/campaigns": Row(
        "POST",
        "/api/v1/campaigns",
        {"producer", "operator", "superuser"},
        {"name": "matrix", "template": "t", "phones": ["+351910000009"]},
    ),
    "api/v1/push-tokens": Row(
        "POST", "/api/v1/push-tokens", {"booking_client", "producer", "superuser"}, {"token": "m"}
    ),
    "api/v1/push-tokens/<str:token>": Row(
        "DELETE", "/api/v1/push-tokens/no-such-token", {"booking_client", "producer", "superuser"}
    ),
    "api/v1/billing/sessions/<str:session_id>": Row("GET", "/api/v1/billing/sessions/1", READERS),
    "api/v1/billing/sessions/<str:session_id>/regenerate": Row(
        "POST", "/api/v1/billing/sessions/1/regenerate", OPERATORS, {"reason": "matrix"}
    ),
    "api/v1/vouchers/<str:voucher_id>/preview": Row("GET", "/api/v1/vouchers/1/preview", READERS),
    "api/v1/bookings/resources": Row(
        "GET", "/api/v1/bookings/resources", {"booking_client", *READERS}
    ),
    "api/v1/bookings/bundles": Row("GET", "/api/v1/bookings/bundles", {"booking_client", *READERS}),
    "api/v1/bookings/holds": Row(
        "POST", "/api/v1/bookings/holds", {"booking_client", "superuser"}, {}
    ),
    "api/v1/bookings/holds/<str:hold_id>/confirm": Row(
        "POST", "/api/v1/bookings/holds/1/confirm", {"booking_client", "superuser"}
    ),
    "api/v1/bookings/<str:booking_id>/check-in": Row(
        "POST", "/api/v1/bookings/999999/check-in", OPERATORS, {"reason": "matrix"}
    ),
    "api/v1/bookings/<str:booking_id>/cancel": Row(
        "POST", "/api/v1/bookings/1/cancel", {"booking_client", "operator", "superuser"}
    ),
    "api/v1/payments/offline": Row("POST", "/api/v1/payments/offline", OPERATORS, {}),
    "api/v1/campaigns/<str:campaign_id>/status": Row("GET", "/api/v1/campaigns/1/status", READERS),
    "api/v1/campaigns/<str:campaign_id>/start": Row(
        "POST", "/api/v1/campaigns/999999/start", OPERATORS, {"reason": "matrix"}
    ),
    "api/v1/campaigns/<str:campaign_id>/stop": Row(
        "POST", "/api/v1/campaigns/999999/stop", OPERATORS, {"reason": "matrix"}
    ),
    "api/v1/failures": Row("GET", "/api/v1/failures", READERS),
    "api/v1/failures/bulk-actions": Row("POST", "/api/v1/failures/bulk-actions", OPERATORS, {}),
    "api/v1/failures/bulk-actions/<str:action_id>": Row(
        "GET", "/api/v1/failures/bulk-actions/999999", READERS
    ),
    "api/v1/failures/bulk-actions/<str:action_id>/<str:verb>": Row(
        "POST", "/api/v1/failures/bulk-actions/999999/approve", OPERATORS, {"reason": "m"}
    ),
    "api/v1/cases": Row("GET", "/api/v1/cases?q=someone@example.test", READERS),
    "api/v1/cases/<str:ref>": Row("GET", "/api/v1/cases/cus_unknown", READERS),
    "api/v1/cases/<str:ref>/failures/<str:source>/<str:source_id>/replay": Row(
        "POST",
        "/api/v1/cases/cus_unknown/failures/refund/999999/replay",
        OPERATORS,
        {"reason": "m"},
    ),
    "api/v1/cases/<str:ref>/failures/<str:source>/<str:source_id>/resolve": Row(
        "POST",
        "/api/v1/cases/cus_unknown/failures/refund/999999/resolve",
        OPERATORS,
        {"reason": "m"},
    ),
    "api/v1/cases/<str:ref>/refunds/<str:refund_id>/settle": Row(
        "POST", "/api/v1/cases/cus_unknown/refunds/999999/settle", OPERATORS, {"reason": "m"}
    ),
    "api/v1/failures/<str:source>/<str:source_id>/resolve": Row(
        "POST", "/api/v1/failures/refund/999999/resolve", OPERATORS, {"reason": "matrix"}
    ),
    "api/v1/storefront/banners": Row("GET", "/api/v1/storefront/banners", EVERYONE),
    "auth/sso/start/": Row("GET", "/auth/sso/start/", EVERYONE, note="sign-in: to the provider"),
    "auth/sso/callback/": Row(
        "GET", "/auth/sso/callback/", EVERYONE, note="sign-in: the provider's code decides"
    ),
    "api/integrations/status": Row("GET", "/api/integrations/status", READERS),
    "api/station/redeem": Row("POST", "/api/station/redeem", {"station"}, {"code": "NOPE"}),
    "webhooks/stripe": Row("POST", "/webhooks/stripe", EVERYONE, {}, note="signature decides"),
    "webhooks/anymail/resend/tracking/": Row(
        "POST", "/webhooks/anymail/resend/tracking/", EVERYONE, {}, note="signature decides"
    ),
    "platform/integrations": (
        Row("GET", "/platform/integrations", READERS),
        Row(
            "POST",
            "/platform/integrations",
            OPERATORS,
            {
                "name": "matrix",
                "endpoint_url": "https://matrix.example.com/hook",
                "event_types": ["*"],
            },
        ),
    ),
    "platform/integrations/<str:integration_id>": (
        Row("GET", "/platform/integrations/1", READERS),
        Row("PATCH", "/platform/integrations/1", OPERATORS, {"rate_per_second": 5}),
        Row("DELETE", "/platform/integrations/999999", OPERATORS, {"reason": "matrix"}),
    ),
    "platform/integrations/<str:integration_id>/events": Row(
        "POST",
        "/platform/integrations/1/events",
        {"producer", "superuser"},
        {"event_type": "booking.confirmed", "payload": {"booking_id": 1}},
    ),
    "platform/integrations/<str:integration_id>/events/batch": Row(
        "POST",
        "/platform/integrations/1/events/batch",
        {"producer", "superuser"},
        {"events": [{"event_type": "booking.confirmed", "payload": {"booking_id": 1}}]},
    ),
    "platform/integrations/<str:integration_id>/rotate-secret": Row(
        "POST", "/platform/integrations/1/rotate-secret", OPERATORS, {"reason": "matrix"}
    ),
    "platform/integrations/<str:integration_id>/recovery/queue": Row(
        "GET", "/platform/integrations/1/recovery/queue", READERS
    ),
    "platform/integrations/<str:integration_id>/recovery/queue/<str:recovery_id>/replay": Row(
        "POST",
        "/platform/integrations/1/recovery/queue/999999/replay",
        OPERATORS,
        {"reason": "matrix"},
    ),
    "platform/integrations/<str:integration_id>/recovery/queue/<str:recovery_id>/edit-and-replay": (
        Row(
            "POST",
            "/platform/integrations/1/recovery/queue/999999/edit-and-replay",
            OPERATORS,
            {"payload": {}, "reason": "matrix"},
        )
    ),
    "^(?:api|platform|webhooks)/(?P<unmatched>.*)$": Row(
        "GET", "/api/v1/no-such-route", EVERYONE, note="404 envelope"
    ),
}


def every_row() -> list[tuple[str, Row]]:
    """(pattern, row) for every method of every route."""
    return [
        (pattern, row)
        for pattern, rows in sorted(API_ROWS.items())
        for row in (rows if isinstance(rows, tuple) else (rows,))
    ]


# Admin pages by kind: the resolver's admin patterns must each be one of these.
ADMIN_KINDS = {
    "changelist": re.compile(r"^admin/[a-z_]+/[a-z_]+/$"),
    "add": re.compile(r"^admin/[a-z_]+/[a-z_]+/add/$"),
    "object": re.compile(
        r"^admin/[a-z_]+/[a-z_]+/<path:object_id>/(change/|delete/|history/|act/<str:action>/)?$"
    ),
    "history_version": re.compile(
        r"^admin/[a-z_]+/[a-z_]+/\^\(\[\^/\]\+\)/history/\(\[\^/\]\+\)/\$$"
    ),
    "site": re.compile(
        r"^admin/(|login/|logout/|password_change/|password_change/done/|autocomplete/|"
        r"jsi18n/|r/<path:content_type_id>/<path:object_id>/|\^\(\?P<app_label>.*|"
        r"\(\?P<url>\.\*\)\$)$"
    ),
    "user_password": re.compile(r"^admin/auth/user/<id>/password/$"),
    "console_page": re.compile(
        r"^admin/(overview/|apps/|failures/|failures/<str:fingerprint>/|cases/|cases/<str:ref>/|"
        r"failures/<str:fingerprint>/ai-summary/|platform/incident/<int:incident_id>/ai-draft/|"
        r"recovery/recoveryitem/<int:item_id>/edit-and-replay/)$"
    ),
}


def all_patterns() -> list[str]:
    found: list[str] = []

    def walk(resolver: URLResolver, prefix: str) -> None:
        for entry in resolver.url_patterns:
            if isinstance(entry, URLResolver):
                walk(entry, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern):
                found.append(prefix + str(entry.pattern))

    walk(get_resolver(), "")
    return found


def admin_kind(pattern: str) -> str | None:
    return next((kind for kind, rule in ADMIN_KINDS.items() if rule.match(pattern)), None)


def test_every_route_has_a_row():
    missing = [
        pattern
        for pattern in all_patterns()
        if pattern not in API_ROWS and not (pattern.startswith("admin/") and admin_kind(pattern))
    ]
    assert missing == [], "routes without an authorization row: " + ", ".join(missing)


def test_every_row_is_a_route():
    patterns = set(all_patterns())
    assert set(API_ROWS) - patterns == set()


# ---------------------------------------------------------------------------- the roles


def api_client(role: str, users: dict[str, User]) -> APIClient:
    if role == "anonymous":
        return APIClient()
    if role == "station":
        return station_client("lisbon-1")
    return token_client(users[role])


def admin_client(role: str, users: dict[str, User]) -> Client:
    client = Client()
    if role in users:
        client.force_login(users[role])
    return client


@pytest.fixture
def world(module_world: dict[str, User], db: None) -> dict[str, User]:
    """Every test here reads the one world of the module (built once, each test's changes
    rolled back)."""
    return module_world


def changes_recorded() -> tuple[int, int]:
    return AuditEvent.objects.count(), LogEntry.objects.count()


@pytest.mark.django_db
@pytest.mark.parametrize("pattern", sorted(API_ROWS))
def test_api_route_by_role(world, pattern, settings):
    settings.STRIPE_WEBHOOK_SECRET = "whsec_matrix"  # configured: the signature decides
    settings.ANYMAIL = {**settings.ANYMAIL, "RESEND_SIGNING_SECRET": "whsec_bWF0cml4LXNlY3JldA=="}
    rows = API_ROWS[pattern]
    for row in rows if isinstance(rows, tuple) else (rows,):
        check_row_by_role(pattern, row, world)


def check_row_by_role(pattern: str, row: Row, world: dict[str, User]) -> None:
    for role in ROLES:
        client = api_client(role, world)
        before = changes_recorded()
        send = getattr(client, row.method.lower())
        response = (
            send(row.path, row.body, format="json") if row.method != "GET" else send(row.path)
        )
        status = response.status_code
        assert status < 500, (pattern, role, status, response.content[:300])
        if role in row.allowed:
            assert status not in (401, 403), (pattern, role, status, response.content[:300])
        else:
            assert status in (401, 403), (pattern, role, status, response.content[:300])
            assert changes_recorded() == before, (pattern, role)
        if row.method != "GET" and role == "viewer":
            assert changes_recorded() == before, (pattern, role)


def admin_urls() -> list[tuple[str, str]]:
    """(kind, a concrete URL) for every admin page: every registered model's pages with the
    id of a real row when there is one, the history version form, and the console pages."""
    from django.contrib import admin

    urls: list[tuple[str, str]] = [
        ("site", "/admin/"),
        ("console_page", "/admin/overview/"),
        ("console_page", "/admin/apps/"),
        ("console_page", "/admin/failures/"),
        ("console_page", "/admin/failures/not-a-fingerprint/"),
        ("console_page", "/admin/cases/"),
        ("console_page", "/admin/cases/cus_unknown/"),
    ]
    from recovery.models import RecoveryItem

    item = RecoveryItem.objects.order_by("id").first()
    urls.append(("console_page", f"/admin/recovery/recoveryitem/{item.pk}/edit-and-replay/"))
    from opsconsole.models import Incident
    from recovery.inbox.groups import failure_groups

    incident = Incident.objects.order_by("id").first()
    urls.append(("console_page", f"/admin/platform/incident/{incident.pk}/ai-draft/"))
    group = failure_groups()[0]
    urls.append(("console_page", f"/admin/failures/{group.fingerprint}/ai-summary/"))
    someone = User.objects.order_by("pk").first()
    urls.append(("user_password", f"/admin/auth/user/{someone.pk}/password/"))
    for model, model_admin in admin.site._registry.items():
        base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        urls += [("changelist", base), ("add", base + "add/")]
        obj = model.objects.order_by("pk").first()
        if obj is None:
            continue
        acts = [f"act/{name}/" for name in model_admin.actions or ()]  # the record's buttons
        for suffix in ("change/", "delete/", "history/", *acts):
            urls.append(("object", f"{base}{obj.pk}/{suffix}"))
        history = getattr(model, "history", None)
        if history is not None and hasattr(model_admin, "history_form_view"):
            version = history.filter(**{model._meta.pk.attname: obj.pk}).first()
            if version is not None:
                urls.append(("history_version", f"{base}{obj.pk}/history/{version.history_id}/"))
    return urls


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_admin_pages_by_role(world, role):
    """Only staff get in; a viewer reads and never changes anything, whatever it posts."""
    client = admin_client(role, world)
    posted_forms = {"post": "yes", "reason": "matrix", "confirm": "yes", "name": "x"}
    for kind, url in admin_urls():
        response = client.get(url)
        assert response.status_code < 500, (role, url, response.status_code)
        if role not in STAFF:
            assert response.status_code == 302 and "/admin/login/" in response["Location"], (
                role,
                url,
            )
        before = changes_recorded()
        posted = client.post(url, posted_forms)
        assert posted.status_code < 500, (role, url, posted.status_code)
        if role not in STAFF:
            assert posted.status_code == 302 and "/admin/login/" in posted["Location"]
        if role == "viewer" or (role in STAFF and kind == "history_version"):
            assert changes_recorded() == before, (role, url)
        if kind == "history_version" and role in STAFF:
            assert posted.status_code == 403, (role, url)


@pytest.mark.django_db
def test_a_viewer_is_offered_no_admin_action_anywhere(world):
    from django.contrib import admin
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = world["viewer"]
    visible = [m for m in admin.site._registry.values() if m.has_view_permission(request)]
    assert len(visible) >= 15
    for model_admin in visible:
        assert model_admin.get_actions(request) == {}, type(model_admin).__name__
    request.user = world["operator"]
    offered = {
        type(model_admin).__name__
        for model_admin in admin.site._registry.values()
        if model_admin.get_actions(request)
    }
    assert {"RecoveryItemAdmin", "VoucherAdmin", "IntegrationAdmin"} <= offered
