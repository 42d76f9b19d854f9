"""Finding the customer from what the caller has: an email, a phone, a booking, payment or
refund id, a Stripe id, a voucher code, a payment or hosted session reference or a request
id. Every lookup is one indexed equality; each match names the customer's ref and what
matched."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import Lower

from bookings.models import Booking, BookingHold
from notifications.models import CampaignTarget, CommunicationLog
from opsconsole.http.inputs import is_id
from opsconsole.models import AuditEvent
from payments.models import HostedCheckoutSession, Payment, Refund, Voucher, WebhookFailure
from payments.money import amount_text
from recovery.cases.entries import stripe_object
from recovery.cases.refs import (
    email_ref,
    normalize_email,
    normalize_phone,
    payment_ref,
    phone_ref,
    user_ref,
)

MAX_MATCHES = 20
PHONE_RE = re.compile(r"^\+?[\d\s().-]{7,20}$")
BOOKING_SUBJECT_RE = re.compile(r"^booking:(\d+)$")


@dataclass(frozen=True)
class Match:
    ref: str
    kind: str
    summary: str
    # The email or phone the customer is known by (masked for staff without the permission).
    contact: str = ""
    code: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "kind": self.kind,
            "summary": self.summary,
            "contact": self.contact,
            "code": self.code,
        }


def _user_match(user_id: int, kind: str, summary: str) -> Match | None:
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        return None
    return Match(user_ref(user.pk), kind, f"{summary}; customer {user.get_username()}", user.email)


def booking_owner(booking_id: int, kind: str, summary: str) -> Match | None:
    customer_id = (
        Booking.objects.filter(pk=booking_id).values_list("customer_id", flat=True).first()
    )
    return _user_match(customer_id, kind, summary) if customer_id else None


def payment_owner(payment: Payment, kind: str) -> Match:
    amount = amount_text(payment.amount, payment.currency)
    summary = f"Payment {payment.reference}: {amount} {payment.currency} ({payment.status})"
    subject = BOOKING_SUBJECT_RE.match(payment.subject)
    if subject and (found := booking_owner(int(subject.group(1)), kind, summary)):
        return found
    return Match(payment_ref(payment.pk), kind, f"{summary}; no booking")


def _session_owner(session: HostedCheckoutSession, kind: str) -> Match | None:
    amount = amount_text(session.amount, session.currency)
    summary = f"Hosted checkout {session.reference}: {amount} {session.currency}"
    if session.customer_email:
        return _email_owner(session.customer_email, kind, summary)
    if session.customer_phone:
        return Match(phone_ref(session.customer_phone), kind, summary, session.customer_phone)
    return None


def _email_owner(email: str, kind: str, summary: str) -> Match:
    email = normalize_email(email)
    users = get_user_model().objects.alias(email_lower=Lower("email")).filter(email_lower=email)
    user_id = users.values_list("pk", flat=True).first()
    if user_id is not None and (found := _user_match(user_id, kind, summary)):
        return found
    return Match(email_ref(email), kind, summary, email)


def _webhook_owner(failure: WebhookFailure, kind: str) -> Match | None:
    intent = stripe_object(failure.payload)
    summary = f"Stripe {failure.event_type} {failure.event_id} not processed"
    booking_id = str((intent.get("metadata") or {}).get("booking_id") or "")
    if is_id(booking_id) and (found := booking_owner(int(booking_id), kind, summary)):
        return found
    if email := intent.get("receipt_email"):
        return _email_owner(str(email), kind, summary)
    # A refund, charge or dispute names the payment intent it belongs to.
    payment_intent = intent.get("payment_intent")
    if isinstance(payment_intent, str) and payment_intent.startswith("pi_"):
        payment = Payment.objects.filter(provider_payment_id=payment_intent).first()
        if payment is not None:
            return payment_owner(payment, kind)
    return None


def _by_email(email: str) -> list[Match | None]:
    email = normalize_email(email)
    users = get_user_model().objects.alias(email_lower=Lower("email")).filter(email_lower=email)
    found: list[Match | None] = [
        Match(user_ref(user.pk), "email", f"Customer {user.get_username()}", user.email)
        for user in users[:MAX_MATCHES]
    ]
    if not found and _known_contact(email):
        found.append(Match(email_ref(email), "email", "Customer known by email only", email))
    return found


def _phone_owner(phone: str) -> Match | None:
    """The customer whose own phone this is (customer.own_phones: given beside one email
    only), so the phone and the email open the same case."""
    emails = {
        normalize_email(email)
        for email in HostedCheckoutSession.objects.filter(customer_phone=phone)
        .exclude(customer_email="")
        .values_list("customer_email", flat=True)[:20]
    }
    if len(emails) != 1:
        return None
    return _email_owner(emails.pop(), "phone", "Customer known by phone and email")


def _known_contact(contact: str) -> bool:
    sessions = HostedCheckoutSession.objects.alias(email_lower=Lower("customer_email"))
    return (
        sessions.filter(email_lower=contact).exists()
        or HostedCheckoutSession.objects.filter(customer_phone=contact).exists()
        or Voucher.objects.alias(email_lower=Lower("customer_email"))
        .filter(email_lower=contact)
        .exists()
        or CampaignTarget.objects.filter(phone=contact).exists()
        or CommunicationLog.objects.alias(recipient_lower=Lower("recipient"))
        .filter(recipient_lower=contact)
        .exists()
    )


def _by_number(number: int) -> list[Match | None]:
    found: list[Match | None] = [booking_owner(number, "booking", f"Booking {number}")]
    if payment := Payment.objects.filter(pk=number).first():
        found.append(payment_owner(payment, "payment"))
    if refund := Refund.objects.select_related("payment").filter(pk=number).first():
        found.append(payment_owner(refund.payment, "refund"))
    return found


def _by_stripe_id(term: str) -> list[Match | None]:
    found: list[Match | None] = []
    if term.startswith("pi_"):
        for payment in Payment.objects.filter(provider_payment_id=term)[:MAX_MATCHES]:
            found.append(payment_owner(payment, "payment_intent"))
    if term.startswith("re_"):
        for refund in Refund.objects.select_related("payment").filter(provider_refund_id=term):
            found.append(payment_owner(refund.payment, "stripe_refund"))
    if term.startswith("cs_"):
        for session in HostedCheckoutSession.objects.filter(provider_session_id=term):
            found.append(_session_owner(session, "checkout_session"))
    if term.startswith("evt_"):
        for failure in WebhookFailure.objects.filter(event_id=term)[:MAX_MATCHES]:
            found.append(_webhook_owner(failure, "stripe_event"))
    if term.startswith(("pi_", "ch_", "re_")) and not any(found):
        # A payment Stripe took, or a refund made in its dashboard, that nothing recorded:
        # only its failed webhook knows it.
        stripe_id = KeyTransform("id", KeyTransform("object", KeyTransform("data", "payload")))
        failures = WebhookFailure.objects.alias(stripe_id=stripe_id).filter(stripe_id=term)
        kind = {"pi_": "payment_intent", "ch_": "charge", "re_": "stripe_refund"}[term[:3]]
        found.extend(_webhook_owner(failure, kind) for failure in failures[:MAX_MATCHES])
    return found


def _by_request_id(term: str) -> list[Match | None]:
    found: list[Match | None] = []
    for object_type, object_id in (
        # The server's id of a request, never the caller's: anyone may send an operator's
        # X-Request-ID as their own and would then be found by it.
        AuditEvent.objects.filter(server_request_id=term)
        .values_list("object_type", "object_id")
        .distinct()[:MAX_MATCHES]
    ):
        found.append(owner_of_object(object_type, object_id, "request"))
    return found


def owner_of_object(object_type: str, object_id: str, kind: str) -> Match | None:
    if not is_id(object_id):
        return None
    pk = int(object_id)
    if object_type == "bookings.booking":
        return booking_owner(pk, kind, f"Booking {pk}")
    if object_type == "bookings.bookinghold":
        holder = BookingHold.objects.filter(pk=pk).values_list("holder_id", flat=True).first()
        return _user_match(holder, kind, f"Hold {pk}") if holder else None
    if object_type == "payments.payment" and (payment := Payment.objects.filter(pk=pk).first()):
        return payment_owner(payment, kind)
    if object_type == "payments.refund":
        refund = Refund.objects.select_related("payment").filter(pk=pk).first()
        return payment_owner(refund.payment, kind) if refund else None
    if object_type == "payments.hostedcheckoutsession":
        session = HostedCheckoutSession.objects.filter(pk=pk).first()
        return _session_owner(session, kind) if session else None
    if object_type == "payments.voucher":
        voucher = Voucher.objects.filter(pk=pk).first()
        if voucher and voucher.customer_email:
            return _email_owner(voucher.customer_email, kind, f"Voucher {pk}")
    return None


def find(term: str) -> list[Match]:
    term = term.strip()
    if subject := BOOKING_SUBJECT_RE.match(term):
        # A payment's subject, as the Payments list shows it: that booking, nothing else.
        booking_id = int(subject.group(1))
        found_booking = booking_owner(booking_id, "booking", f"Booking {booking_id}")
        return [found_booking] if found_booking else []
    if term.startswith("#") and is_id(term[1:]):
        term = term[1:]  # a record's number as page titles write it
    found: list[Match | None] = []
    if "@" in term:
        found += _by_email(term)
    elif is_id(term):
        found += _by_number(int(term))
    if PHONE_RE.match(term) and "@" not in term:
        phone = normalize_phone(term)
        if owner := _phone_owner(phone):
            found.append(owner)
        elif _known_contact(phone):
            found.append(Match(phone_ref(phone), "phone", "Customer known by phone", phone))
    found += _by_stripe_id(term)
    if voucher := Voucher.objects.filter(code__in={term, term.upper()}).first():
        summary = f"Voucher {voucher.pk}: {voucher.value} {voucher.currency} ({voucher.status})"
        if voucher.customer_email:
            owner = _email_owner(voucher.customer_email, "voucher", summary)
            found.append(replace(owner, code=voucher.code))
    if session := HostedCheckoutSession.objects.filter(reference=term).first():
        found.append(_session_owner(session, "hosted_session"))
    # The reference the Payments list shows (stripe_pi_..., offline_...): unique, indexed.
    if payment := Payment.objects.filter(reference=term).first():
        found.append(payment_owner(payment, "payment_reference"))
    found += _by_request_id(term[:128])
    unique: dict[str, Match] = {}
    for match in found:
        if match is not None and match.ref not in unique:
            unique[match.ref] = match
    return list(unique.values())[:MAX_MATCHES]
