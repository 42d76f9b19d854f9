"""Stripe's webhook events as its API reference shows them, signed with stripe-python's own
WebhookSignature, for the contract tests."""

from __future__ import annotations

import json
import time
from typing import Any

import stripe

SECRET = "whsec_contract"


def stripe_event(event_id: str, event_type: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": event_id,
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": int(time.time()),
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
        "data": {"object": obj},
    }


def payment_intent_succeeded(intent_id: str, amount: int, currency: str) -> dict[str, Any]:
    return stripe_event(
        f"evt_{intent_id}",
        "payment_intent.succeeded",
        {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_capturable": 0,
            "amount_received": amount,
            "currency": currency,
            "status": "succeeded",
            "capture_method": "automatic",
            "latest_charge": f"ch_{intent_id}",
            "livemode": False,
            "metadata": {},
            "payment_method_types": ["card"],
        },
    )


def charge_refunded(intent_id: str, *, amount: int, refunded: int, currency: str) -> dict:
    return stripe_event(
        f"evt_refunded_{intent_id}",
        "charge.refunded",
        {
            "id": f"ch_{intent_id}",
            "object": "charge",
            "amount": amount,
            "amount_captured": amount,
            "amount_refunded": refunded,
            "currency": currency,
            "payment_intent": intent_id,
            "refunded": refunded >= amount,
        },
    )


def send_signed(client: Any, event: dict[str, Any]) -> Any:
    """POST the event to the Stripe webhook as Stripe signs it."""
    payload = json.dumps(event)
    header = stripe.WebhookSignature.generate_signature_header(payload, SECRET)
    return client.post(
        "/webhooks/stripe",
        data=payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=header,
    )
