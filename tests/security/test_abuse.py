"""The abuse suite: hundreds of generated bad inputs and forged requests across the routes
and roles, with sentinel strings planted in data the callers must not see.

It prints how many requests it tried, and proves three things of all of them: no answer is
a 500, no sentinel reaches a caller without `platform.view_personal_data`, and no business
row changes (throttle counters, idempotency records and failed-login records excepted).
"""

from __future__ import annotations

import itertools
import json
import random
from collections import Counter

import pytest
from django.apps import apps
from django.test import override_settings
from rest_framework.test import APIClient

from opsconsole.access.personal_data import can_see_personal_data
from tests.security.sentinels import SENTINELS
from tests.security.test_authorization_matrix import ROLES, api_client, every_row

# The storefront's banners and its surfaces' switches (waffle's) are business rows too.
BUSINESS_APPS = (
    "bookings",
    "payments",
    "recovery",
    "notifications",
    "platform",
    "storefront",
    "waffle",
)
NOT_BUSINESS = {
    "platform.idempotencykey",
    "platform.workerstatus",
    "platform.integrationprobe",
    "platform.ratecounter",
    # The open incident's recorder keeps every failed server action as evidence.
    "platform.incidentcapture",
}
BAD_IDS = ["999999", "0", "-1", "\u0661\u0662", "abc", "1e3", "9" * 40, "%2e%2e", "1;DROP"]
BAD_BODIES: list[object] = [
    [],
    "just a string",
    12345,
    None,
    {"zz_unknown": True},
    {"reason": ["not", "a", "string"], "zz_unknown": 1},
    {"reason": "x" * 5000, "zz_unknown": "y"},
    {"payload": {"a": {"b": {"c": [1, 2, {"d": None}]}}}, "zz_unknown": 0},
    {"code": "' OR 1=1 --", "zz_unknown": ""},
    {"start_time": "2031-01-01T10:00:00", "end_time": "yesterday", "zz_unknown": 1},
    {"amount": "NaN", "booking_id": -5, "method": "gold", "zz_unknown": 1},
]
RAW_BODIES = [
    b"{not json",
    b"[" * 200 + b"]" * 200,
    b'{"a": "\\ud800"}',
    '{"reason": "caf\u00e9"'.encode(),
    b"\xff\xfe\xfa",
]
FORGED_AUTH = [
    "Token forged-token-value",
    "Token " + "a" * 300,
    "Token",
    "Station stn_forged",
    "Bearer not-a-metrics-token",
    "Basic YWRtaW46YWRtaW4=",
    "Token \u00e9t\u00e9",
]


def business_state() -> dict[str, int]:
    state: dict[str, int] = {}
    for app_label in BUSINESS_APPS:
        for model in apps.get_app_config(app_label).get_models():
            label = model._meta.label_lower
            if label not in NOT_BUSINESS and not label.startswith("platform.historical"):
                state[label] = model.objects.count()
    return state


def concrete(path: str, rng: random.Random) -> str:
    """The row's sample path with its numeric ids swapped for a bad one."""
    bad = rng.choice(BAD_IDS)
    parts = path.split("/")
    return "/".join(bad if part.isdigit() else part for part in parts)


@pytest.mark.django_db
@override_settings(
    API_THROTTLE_RATES={"anon": "100000/min", "user": "100000/min", "station_redeem": "100000/min"},
    AUTH_TOKEN_FAILURE_LIMIT=100000,
    STRIPE_WEBHOOK_SECRET="whsec_abuse",
)
def test_generated_abuse_gets_no_500_leaks_nothing_and_changes_nothing(world, planted):
    rng = random.Random(17)
    clients = {role: api_client(role, world) for role in ROLES}
    before = business_state()
    statuses: Counter[int] = Counter()
    tried = 0
    leaks: list[tuple[str, str, str]] = []
    server_errors: list[tuple[str, str, int]] = []

    def check(role: str, label: str, response) -> None:
        nonlocal tried
        tried += 1
        statuses[response.status_code] += 1
        if response.status_code >= 500 and response.status_code != 503:
            server_errors.append((role, label, response.status_code))
        body = response.content.decode("utf-8", errors="replace")
        user = getattr(response.wsgi_request, "user", None)
        if role == "forged" or not can_see_personal_data(user):
            leaks.extend((role, label, s) for s in SENTINELS if s in body)

    for (pattern, row), role in itertools.product(every_row(), ROLES):
        client = clients[role]
        method = getattr(client, row.method.lower())
        for body in rng.sample(BAD_BODIES, 3):
            path = concrete(row.path, rng)
            if row.method == "GET":
                response = method(path, {"limit": rng.choice(["-1", "x", "99999", ""])})
            else:
                response = method(path, json.dumps(body), content_type="application/json")
            check(role, f"{row.method} {path}", response)
        if row.method != "GET":
            raw = rng.choice(RAW_BODIES)
            check(role, f"raw {pattern}", method(row.path, raw, content_type="application/json"))
            check(role, f"form {pattern}", method(row.path, {"a": "b"}, format="multipart"))
            check(
                role,
                f"key {pattern}",
                method(
                    row.path,
                    json.dumps({"zz_unknown": 1}),
                    content_type="application/json",
                    HTTP_IDEMPOTENCY_KEY="\u00e9" * 3 if rng.random() < 0.5 else "k" * 400,
                ),
            )
    for (_, row), auth in itertools.product(every_row(), FORGED_AUTH):
        forged = APIClient(REMOTE_ADDR=f"203.0.113.{rng.randint(1, 250)}")
        forged.credentials(HTTP_AUTHORIZATION=auth, HTTP_X_FORWARDED_FOR="127.0.0.1")
        send = getattr(forged, row.method.lower())
        response = (
            send(row.path)
            if row.method == "GET"
            else send(row.path, json.dumps({"reason": "forged"}), content_type="application/json")
        )
        check("forged", f"{auth[:20]} {row.method} {row.path}", response)
    # Real reads of the planted rows, by every role: where the sentinels live.
    integration, item, voucher = planted
    reads = [
        "/platform/integrations",
        f"/platform/integrations/{integration.pk}/recovery/queue?status=dlq",
        "/api/v1/failures",
        f"/api/v1/failures?source=integration_delivery&fingerprint={item.failure_fingerprint}",
        f"/api/v1/vouchers/{voucher.pk}/preview",
    ]
    for role, url in itertools.product(ROLES, reads):
        check(role, f"read {url}", clients[role].get(url))
    # A signed-in session without its CSRF token is a forged form post.
    session = APIClient(enforce_csrf_checks=True)
    session.force_login(world["operator"])
    for pattern, row in every_row():
        if row.method == "POST":
            response = session.post(row.path, {"reason": "csrf"}, format="json")
            check("operator-no-csrf", f"csrf {pattern}", response)
            assert response.status_code in (401, 403, 404, 413, 400, 429, 503), (pattern, response)

    print(f"\nabuse suite: {tried} requests tried; statuses {dict(sorted(statuses.items()))}")
    print(f"abuse suite: {len(server_errors)} answers were 500s, {len(leaks)} sentinels leaked")
    assert tried >= 500
    assert server_errors == []
    assert leaks == []
    assert business_state() == before
