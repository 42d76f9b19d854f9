"""The demo world's practice cases (`demo_data`): failures that stay put until an operator
acts, so each runbook step can be tried in the console. Every case is made through the
service the real event goes through; where the real event needs an outside answer (a
declined refund, a WhatsApp 429), a stand-in provider gives it. Each loader is idempotent:
it looks for its own rows first and leaves them as they are (an operator's fix included).

What the scheduled workers leave alone, and why (tests/opsconsole/test_demo_world.py):
- the refund group: Stripe refused both refunds for good (HTTP 400), so the refund worker
  does not retry them and the DLQ sweeper, which retries only transient failures, leaves
  them; a day later it hands them to manual review. Two operators resolve money;
- the hosted session, the DLQ group and the paused partner: see demo_data;
- the incident guide's workers: closing Court 2 failing while Maria's booking is still to
  come (the catalog scheduler's `consecutive_failures` rises until an operator acts), a
  bundle stopped by its repriced sauna, and nudges owed (Maria's voucher about to expire,
  a thank-you for her referral, a new customer's onboarding) that go out on the first runs.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.contrib.auth.models import Group, User
from django.utils import timezone

from bookings import services as bookings
from bookings.models import Booking, Bundle, ContactPreference, Referral, Resource
from bookings.nudges import LoyaltyNudgeDispatch, OnboardingNudges
from bookings.services.bundles import bundle_create
from bookings.services.catalog import catalog_change_schedule
from bookings.workers import BundleGuardrailWorker, CatalogScheduler, FulfillmentProcessor
from notifications.adapters import OutboundMessage, SendResult
from notifications.campaigns import campaign_create, campaign_start, whatsapp_cannot_send
from notifications.models import Campaign
from notifications.workers import CampaignDispatcherWorker
from opsconsole.incidents.records import incident_note_add, incident_open
from opsconsole.models import Incident
from payments.adapters import RefundOutcome
from payments.models import Payment, VoucherRedemptionFailure, WebhookFailure
from payments.refunds import refund_request
from payments.vouchers import VoucherAlreadyRedeemed, voucher_issue, voucher_redeem
from payments.webhooks import OUT_OF_ORDER_RETRIES, stripe_event_process
from storefront.banners import promotional_banner_create
from storefront.models import PromotionalBanner

ACTOR = "demo"
CAMPAIGN = "Spring courts promo"
INCIDENT = "CRM partner refuses deliveries; its DLQ is growing"
# WhatsApp's Retry-After on the demo's 429: long enough to practise the runbook's Stop.
RETRY_AFTER_SECONDS = 1800
MARIA = "maria.lopez@example.test"


class ChargeTooOldToRefund:
    """Stripe's answer for a charge past its refund window (HTTP 400): permanent, so the
    refund worker gives up at once and the sweeper never retries it."""

    def create_refund(
        self, *, payment_intent: str, amount_cents: int, idempotency_key: str
    ) -> RefundOutcome:
        return RefundOutcome(
            ok=False,
            failure_code="http_400",
            failure_detail="charge_expired_for_refund: This charge is too old to be refunded.",
            retryable=False,
        )


@dataclass
class RateLimitedWhatsApp:
    """WhatsApp Cloud API over its pair rate limit: 429 with a Retry-After."""

    channel: str = "whatsapp"
    provider: str = "sandbox"

    def send(self, message: OutboundMessage) -> SendResult:
        return SendResult(
            ok=False,
            provider=self.provider,
            failure_code="http_429",
            failure_detail="Rate limit hit",
            http_status=429,
            retry_after_seconds=RETRY_AFTER_SECONDS,
            provider_error_code="130429",
        )


def card_paid(intent: str, cents: int, **metadata: str) -> Payment:
    """A card payment as Stripe reports it: its payment_intent.succeeded, processed once."""
    stripe_event_process(
        event={
            "id": f"evt_{intent}",
            "type": "payment_intent.succeeded",
            "data": {
                "object": {
                    "id": intent,
                    "amount": cents,
                    "amount_received": cents,
                    "currency": "eur",
                    "metadata": metadata,
                }
            },
        }
    )
    return Payment.objects.get(provider_payment_id=intent)


def load_practice_world(admin: User) -> None:
    load_refused_refunds()
    load_rate_limited_campaign()
    load_double_redeemed_voucher()
    load_open_incident(admin)
    load_customer_story()
    load_refund_owed_offline(admin)
    load_catalog_and_fulfilment(admin)
    load_storefront_banner()


def load_storefront_banner() -> None:
    """A promotional banner the storefront shows (GET /api/v1/storefront/banners), to
    practise suspending promotional banners (docs/runbooks/incident-response.md)."""
    if PromotionalBanner.objects.exists():
        return
    promotional_banner_create(
        title="Spring courts: two hours for the price of one",
        body="Book any court before 5 pm on a weekday.",
        link="/offers/spring",
        actor=ACTOR,
        reason="the demo storefront's banner",
    )


def load_refused_refunds() -> None:
    """The money group: two refunds Stripe refused for good, one failure group."""
    if Payment.objects.filter(provider_payment_id="pi_demo_lessons_1").exists():
        return
    for n, cents in ((1, 12000), (2, 6000)):
        payment = card_paid(f"pi_demo_lessons_{n}", cents)
        refund_request(
            payment_id=payment.pk,
            amount=payment.amount,
            reason="lesson pack cancelled by the coach",
            actor=ACTOR,
            provider=ChargeTooOldToRefund(),
        )


def load_rate_limited_campaign() -> None:
    """The WhatsApp campaign, started, whose first send met a 429: it waits Retry-After.
    Without a WhatsApp channel (no sandbox) it stays a draft."""
    if Campaign.objects.filter(name=CAMPAIGN).exists():
        return
    campaign = campaign_create(
        name=CAMPAIGN,
        template="spring_promo",
        phones=["+351910000101", "+351910000102", "not-a-number"],
        throttle_per_minute=30,
        actor=ACTOR,
    )
    if whatsapp_cannot_send():
        return
    campaign_start(campaign_id=campaign.pk, actor=ACTOR, reason="spring promo")
    # The dispatcher's own run, with the provider answering 429: what a real one records.
    CampaignDispatcherWorker(adapter=RateLimitedWhatsApp()).run_once(triggered_by=ACTOR)


def load_double_redeemed_voucher() -> None:
    """A voucher redeemed at one station, then presented at another: the refusal is kept
    (the station runbook: void it and issue a replacement if the customer was wronged)."""
    if VoucherRedemptionFailure.objects.exists():
        return
    voucher = voucher_issue(
        description="Gift: one court hour",
        value=Decimal("12.00"),
        station_scope="*",
        customer_email=MARIA,
        actor=ACTOR,
    )
    voucher_redeem(code=voucher.code, station_id="lisbon-1", actor="station:lisbon-1")
    # The refusal is the point: VoucherRedemptionFailure keeps it for the inbox.
    with contextlib.suppress(VoucherAlreadyRedeemed):
        voucher_redeem(code=voucher.code, station_id="porto-2", actor="station:porto-2")


def load_open_incident(admin: User) -> None:
    if Incident.objects.filter(title=INCIDENT).exists():
        return
    incident = incident_open(
        title=INCIDENT, severity="sev2", actor=admin, reason="CRM deliveries in the DLQ"
    )
    incident_note_add(
        incident_id=incident.pk,
        text="crm-sync: connection refused at the partner's endpoint since yesterday. "
        "Waiting for their new endpoint URL; then replay the DLQ group.",
        actor=admin,
    )


def _booked(customer: User, court: Resource, start: datetime) -> Booking:
    hold = bookings.booking_hold_create(
        resource_id=court.pk, start_time=start, end_time=start + timedelta(hours=1), holder=customer
    )
    return bookings.booking_hold_confirm(hold_id=hold.pk, customer=customer).booking


def load_customer_story() -> None:
    """Maria, from booking to refund: two courts booked and paid by card (a confirmation
    email each), one cancelled and refunded, and a Stripe webhook about a refund made in
    Stripe's dashboard that the console cannot match (a failure to resolve)."""
    if User.objects.filter(username="maria").exists():
        return
    maria = User.objects.create_user("maria", email=MARIA, first_name="Maria", last_name="Lopez")
    maria.groups.add(Group.objects.get(name="Booking client"))
    court, _ = Resource.objects.get_or_create(name="Court 2")
    evening = (timezone.now() + timedelta(days=2)).replace(
        hour=18, minute=0, second=0, microsecond=0
    )
    for n, start in enumerate((evening, evening + timedelta(days=1)), start=1):
        booking = _booked(maria, court, start)
        card_paid(f"pi_demo_maria_{n}", 4500, booking_id=str(booking.pk))
    bookings.booking_cancel(booking_id=booking.pk, actor=maria, reason="cannot make it")
    _unmatched_refund_webhook()


def load_refund_owed_offline(desk: User) -> None:
    """Joao paid a court in cash at the desk, then cancelled: his refund is owed until staff
    record how it was paid back (Admin → Refunds → Owed)."""
    if User.objects.filter(username="joao").exists():
        return
    joao = User.objects.create_user("joao", email="joao.silva@example.test", first_name="Joao")
    joao.groups.add(Group.objects.get(name="Booking client"))
    court, _ = Resource.objects.get_or_create(name="Court 3")
    start = (timezone.now() + timedelta(days=3)).replace(hour=10, minute=0, second=0, microsecond=0)
    booking = _booked(joao, court, start)
    bookings.booking_offline_payment_record(
        booking_id=booking.pk, amount=Decimal("25.00"), method="cash", actor=desk
    )
    bookings.booking_cancel(booking_id=booking.pk, actor=joao, reason="rained off")


BUNDLE = "Court 2 + sauna"


def load_catalog_and_fulfilment(desk: User) -> None:
    """The incident guide's workers with something to show: prices, a bundle whose sauna was
    repriced after it was priced (the guardrail stops it), a maintenance closing of Court 2
    that fails while Maria's booking is still to come, next month's slots and a price change
    on schedule; a walk-in paid in cash with no email address (fulfilled for the desk: the
    code is on the fulfilment's page); and nudges owed: Maria's voucher expires in three
    days, she brought the walk-in (a thank-you), and Nina signed up two days ago and has not
    booked (onboarding). Maria and Nina agreed to nudges."""
    if Bundle.objects.filter(name=BUNDLE).exists():
        return
    court = Resource.objects.get(name="Court 2")
    bookings.resource_update(
        resource_id=court.pk, changes={"price": Decimal("45.00")}, actor=ACTOR, reason="price list"
    )
    sauna = bookings.resource_create(
        name="Sauna", price=Decimal("15.00"), actor=ACTOR, reason="spa opening"
    )
    bundle_create(
        name=BUNDLE,
        price=Decimal("55.00"),
        resource_ids=[court.pk, sauna.pk],
        actor=ACTOR,
        reason="winter offer",
    )
    bookings.resource_update(
        resource_id=sauna.pk, changes={"price": Decimal("18.00")}, actor=ACTOR, reason="energy"
    )
    now = timezone.now()
    catalog_change_schedule(
        resource_id=court.pk, kind="close", apply_at=now, actor=ACTOR, reason="floor resurfacing"
    )
    month_ahead = (now + timedelta(days=62)).replace(hour=0, minute=0, second=0, microsecond=0)
    catalog_change_schedule(
        resource_id=sauna.pk,
        kind="open_slots",
        apply_at=now + timedelta(days=20),
        bookable_until=month_ahead,
        actor=ACTOR,
        reason="next month's slots",
    )
    catalog_change_schedule(
        resource_id=Resource.objects.get_or_create(name="Court 1")[0].pk,
        kind="price_change",
        apply_at=now + timedelta(days=7),
        price=Decimal("40.00"),
        actor=ACTOR,
        reason="spring prices",
    )
    walk_in = User.objects.create_user("walkin", first_name="Walk-in")
    walk_in.groups.add(Group.objects.get(name="Booking client"))
    start = (now + timedelta(days=4)).replace(hour=9, minute=0, second=0, microsecond=0)
    booking = _booked(walk_in, Resource.objects.get(name="Court 3"), start)
    bookings.booking_offline_payment_record(
        booking_id=booking.pk, amount=Decimal("25.00"), method="cash", actor=desk
    )
    maria = User.objects.get(username="maria")
    Referral.objects.create(referrer=maria, referred=walk_in)
    voucher_issue(
        description="Loyalty credit",
        value=Decimal("10.00"),
        customer_email=MARIA,
        actor=ACTOR,
        reason="ten bookings this year",
        expires_at=now + timedelta(days=3),
    )
    nina = User.objects.create_user(
        "nina",
        email="nina.costa@example.test",
        first_name="Nina",
        date_joined=now - timedelta(days=2),
    )
    nina.groups.add(Group.objects.get(name="Booking client"))
    for customer in (maria, nina):
        ContactPreference.objects.create(customer=customer, nudges_allowed=True)
    for worker in (
        FulfillmentProcessor,
        CatalogScheduler,
        BundleGuardrailWorker,
        LoyaltyNudgeDispatch,
        OnboardingNudges,
    ):
        worker().run_once(triggered_by="demo")


def _unmatched_refund_webhook() -> None:
    """A refund made in Stripe's dashboard: its event names a refund the console never made.
    The retry worker would try it for an hour first; here those retries are already spent
    (the past, which no service writes), so it waits for a person as the runbook says."""
    stripe_event_process(
        event={
            "id": "evt_demo_refund_updated",
            "type": "refund.updated",
            "data": {
                "object": {
                    "id": "re_demo_dashboard_goodwill",
                    "payment_intent": "pi_demo_maria_1",
                    "amount": 1000,
                    "currency": "eur",
                    "status": "succeeded",
                }
            },
        }
    )
    WebhookFailure.objects.filter(
        event_id="evt_demo_refund_updated", status=WebhookFailure.Status.RETRYING
    ).update(
        status=WebhookFailure.Status.PENDING_MANUAL,
        next_retry_at=None,
        attempt_count=OUT_OF_ORDER_RETRIES.max_attempts - 1,
    )
