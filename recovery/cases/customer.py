"""Who a case is about: the records a customer's identity reaches.

A customer is what the records share: a user (who booked and held), their email (hosted
sessions, vouchers, messages), a phone (sessions, campaign messages, messages), or a card
payment that reached no booking. One hop joins a user and their email both ways, and an
email and the phone given with it when no other email gave that phone; nothing else is
joined, so one shared phone never merges strangers."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db.models import Q
from django.db.models.functions import Lower

from bookings.models import Booking, BookingHold
from notifications.models import CampaignTarget
from opsconsole.http.errors import NotFound
from opsconsole.http.inputs import is_id
from payments.models import HostedCheckoutSession, Payment, Refund, Voucher
from recovery.cases.refs import Identity, normalize_email

# A customer's own records are few; a ref that reaches more is not one customer (a shared
# test address, a station's phone) and is cut here rather than read whole.
MAX_RECORDS_PER_KIND = 500


class CaseNotFound(NotFound):
    code = "OPS-404-CASE-NOT-FOUND"


@dataclass
class Customer:
    identity: Identity
    user_ids: list[int] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    booking_ids: list[int] = field(default_factory=list)
    hold_ids: list[int] = field(default_factory=list)
    payment_ids: list[int] = field(default_factory=list)
    refund_ids: list[int] = field(default_factory=list)
    session_ids: list[int] = field(default_factory=list)
    voucher_ids: list[int] = field(default_factory=list)
    target_ids: list[int] = field(default_factory=list)

    @property
    def contacts(self) -> list[str]:
        return [*self.emails, *self.phones]

    def booking_subjects(self) -> list[str]:
        return [f"booking:{pk}" for pk in self.booking_ids]


def _ids(queryset: object) -> list[int]:
    return list(queryset.order_by("pk").values_list("pk", flat=True)[:MAX_RECORDS_PER_KIND])  # type: ignore[attr-defined]


def customer_of(identity: Identity) -> Customer:
    customer = Customer(identity=identity)
    users = get_user_model().objects
    if identity.kind == "user":
        user = users.filter(pk=int(identity.value)).first() if is_id(identity.value) else None
        if user is None:
            raise CaseNotFound("No such customer.")
        customer.user_ids = [user.pk]
        if user.email:
            customer.emails = [normalize_email(user.email)]
    elif identity.kind == "email":
        customer.emails = [identity.value]
        customer.user_ids = _ids(
            users.alias(email_lower=Lower("email")).filter(email_lower=identity.value)
        )
    elif identity.kind == "phone":
        customer.phones = [identity.value]
    if customer.emails and not customer.phones:
        customer.phones = own_phones(customer.emails)
    elif identity.kind == "payment":
        customer.payment_ids = _ids(Payment.objects.filter(pk=int(identity.value)))
        if not customer.payment_ids:
            raise CaseNotFound("No such payment.")
    _reach_records(customer)
    return customer


def own_phones(emails: list[str]) -> list[str]:
    """The phones checkout sessions give beside these emails and beside no other email: the
    customer's own, so their texts are on their case. A phone another email also gave (a
    family's, a shop's) joins nobody."""
    sessions = HostedCheckoutSession.objects.alias(email_lower=Lower("customer_email"))
    given = set(
        sessions.filter(email_lower__in=emails)
        .exclude(customer_phone="")
        .values_list("customer_phone", flat=True)[:20]
    )
    return sorted(
        phone
        for phone in given
        if not sessions.filter(customer_phone=phone)
        .exclude(customer_email="")
        .exclude(email_lower__in=emails)
        .exists()
    )


def _reach_records(customer: Customer) -> None:
    if customer.user_ids:
        customer.booking_ids = _ids(Booking.objects.filter(customer_id__in=customer.user_ids))
        customer.hold_ids = _ids(BookingHold.objects.filter(holder_id__in=customer.user_ids))
    if customer.booking_ids:
        booked = _ids(Payment.objects.filter(subject__in=customer.booking_subjects()))
        customer.payment_ids = sorted({*customer.payment_ids, *booked})
    if customer.payment_ids:
        customer.refund_ids = _ids(Refund.objects.filter(payment_id__in=customer.payment_ids))
    sessions = Q(pk__in=[])
    if customer.emails:
        sessions |= Q(customer_email_lower__in=customer.emails)
        customer.voucher_ids = _ids(
            Voucher.objects.alias(customer_email_lower=Lower("customer_email")).filter(
                customer_email_lower__in=customer.emails
            )
        )
    if customer.phones:
        sessions |= Q(customer_phone__in=customer.phones)
        customer.target_ids = _ids(CampaignTarget.objects.filter(phone__in=customer.phones))
    if customer.emails or customer.phones:
        customer.session_ids = _ids(
            HostedCheckoutSession.objects.alias(
                customer_email_lower=Lower("customer_email")
            ).filter(sessions)
        )
