"""Signed Stripe webhook events, checked and read into the interface's ``GatewayEvent``.

The ``Stripe-Signature`` header is checked with ``STRIPE_WEBHOOK_SECRET`` by the library's verifier,
within ``TOLERANCE_SECONDS`` of the event's timestamp (against replays). The event's ``reference`` is
the PaymentIntent it is about (a PaymentIntent's own id, or a charge's or dispute's
``payment_intent``), and its ``idempotency_key`` our attempt key from the PaymentIntent's metadata;
an event about no PaymentIntent (a PaymentMethod, a SetupIntent) names the object itself. Whoever
applies an event reads the PaymentIntent again: events come late, twice or out of order.
"""

import datetime
import json
from collections.abc import Mapping

import stripe

from payments.gateways.base import GatewayEvent, GatewayUnavailable, WebhookSignatureError

from . import outcomes
from .client import stripe_settings

TOLERANCE_SECONDS = 300
SIGNATURE_HEADER = "Stripe-Signature"


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return ""


def _reference(obj: dict) -> str:
    if obj.get("object") == "payment_intent":
        return str(obj["id"])
    intent = obj.get("payment_intent")
    if isinstance(intent, dict):  # expanded
        intent = intent.get("id")
    return str(intent or obj["id"])


def _said(obj: dict) -> tuple[str, str]:
    """(status, decline code) as a PaymentIntent in the event says, at the time it was sent."""
    if obj.get("object") != "payment_intent":
        return "", ""
    try:
        result = outcomes.from_payment_intent(obj)
    except GatewayUnavailable:
        return "", ""
    return str(result.status), result.decline_code


def parse_event(body: bytes, headers: Mapping[str, str]) -> GatewayEvent:
    signature = _header(headers, SIGNATURE_HEADER)
    if not signature:
        raise WebhookSignatureError(f"No {SIGNATURE_HEADER} header.")
    try:
        stripe.WebhookSignature.verify_header(
            body.decode("utf-8"), signature, stripe_settings().webhook_secret, TOLERANCE_SECONDS
        )
    except (stripe.SignatureVerificationError, UnicodeDecodeError) as exc:
        raise WebhookSignatureError(
            f"Not signed by Stripe with our webhook secret, or too old: {exc}"
        ) from None
    try:
        event = json.loads(body)
        obj = event["data"]["object"]
        status, decline_code = _said(obj)
        return GatewayEvent(
            id=str(event["id"]),
            type=str(event["type"]),
            created=datetime.datetime.fromtimestamp(int(event["created"]), tz=datetime.UTC),
            reference=_reference(obj),
            idempotency_key=str((obj.get("metadata") or {}).get("attempt") or ""),
            status=status,
            decline_code=decline_code,
            payload=event,
        )
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise WebhookSignatureError(f"The signed body is not a Stripe event: {type(exc).__name__}.") from None
