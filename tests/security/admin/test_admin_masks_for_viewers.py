"""One masking rule for the admin and the API: a Support viewer walks every admin page it
can open, the planted records' pages among them (a hosted session's Recovery Timeline, a
failure group, an audit event carrying a partner's error text), and reads no sentinel."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from notifications.models import CommunicationLog
from opsconsole.evidence import audit
from opsconsole.models import AuditEvent
from payments.models import HostedCheckoutSession
from recovery.inbox.groups import failure_groups
from tests.payments.factories import HostedSessionFactory
from tests.security.sentinels import EMAIL, PHONE, SENTINELS, URL_TOKEN
from tests.security.test_authorization_matrix import admin_urls


@pytest.fixture
def planted_pages(world, planted) -> list[str]:
    _, item, _ = planted
    # A checkout link is a bearer link: whoever reads it may use it.
    link = f"https://checkout.example.test/c/pay/cs_{URL_TOKEN}"
    session = HostedSessionFactory(customer_email=EMAIL, customer_phone=PHONE, checkout_url=link)
    logs = []
    for channel, recipient in (("email", EMAIL), ("sms", PHONE)):
        logs.append(
            CommunicationLog.objects.create(
                channel=channel,
                template="checkout_link",
                recipient=recipient,
                status="sent",
                provider="sandbox",
                subject_type=HostedCheckoutSession._meta.label_lower,
                subject_id=str(session.pk),
                triggered_by="automation",
                idempotency_key=f"planted-{channel}",
                context={"checkout_url": link},
            )
        )
    audit.record(
        "recovery.item.replay_failed",
        obj=item,
        before={"failure_detail": f"HTTP 422: unknown customer {EMAIL} ({PHONE})"},
        after={"status": "dlq"},
        actor="automation",
        reason=f"partner said {EMAIL}",
    )
    event = AuditEvent.objects.filter(event="recovery.item.replay_failed").latest("id")
    from payments.models import WebhookFailure

    webhook = WebhookFailure.objects.create(
        provider="stripe",
        event_id="evt_planted",
        event_type="refund.updated",
        payload={},
        error=f"LookupError: no refund for {EMAIL} {PHONE}",
    )
    group = next(
        group
        for group in failure_groups(source="integration_delivery")
        if item.pk in group.source_ids()
    )
    return [
        f"/admin/payments/hostedcheckoutsession/{session.pk}/change/",
        f"/admin/notifications/communicationlog/{logs[0].pk}/change/",
        "/admin/notifications/communicationlog/",
        f"/admin/failures/{group.fingerprint}/",
        f"/admin/platform/auditevent/{event.pk}/change/",
        "/admin/platform/auditevent/",
        f"/admin/recovery/recoveryitem/{item.pk}/change/",
        "/admin/failures/",
        f"/admin/payments/webhookfailure/{webhook.pk}/change/",
        "/admin/payments/webhookfailure/",
    ]


def leaked(html: str) -> list[str]:
    return [s for s in SENTINELS if s in html]


@pytest.mark.django_db
def test_a_viewer_reads_no_sentinel_on_any_admin_page(world, planted_pages):
    viewer = Client()
    viewer.force_login(User.objects.get(username="viewer"))
    pages = planted_pages + [url for _, url in admin_urls()]
    found: dict[str, list[str]] = {}
    for url in pages:
        response = viewer.get(url)
        assert response.status_code < 500, url
        if leaks := leaked(response.content.decode()):
            found[url] = leaks
    assert found == {}
    # The planted pages open for the viewer, and an operator (who may see personal data)
    # reads the sentinels on them: the walk looked where the data is.
    assert {url: viewer.get(url).status_code for url in planted_pages} == dict.fromkeys(
        planted_pages, 200
    )
    operator = Client()
    operator.force_login(User.objects.get(username="operator"))
    whole = "".join(operator.get(url).content.decode() for url in planted_pages)
    assert {EMAIL, PHONE, URL_TOKEN} <= set(leaked(whole))
