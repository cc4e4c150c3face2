"""Webhook events about something other than a charge's outcome: refunds, disputes and saved
methods. ``invoices.webhooks`` stores each event once and hands it here by its type.

As for charges, the object is read again from the gateway, outside any transaction, and that answer
is applied through the services: events come late, twice or out of order, and the gateway's state
now decides, not the event's body. Each handler returns ``(outcome, attempt, error)`` for the stored
event; it raises GatewayUnavailable when the gateway could not be read (the event is sent again).
"""

import logging

from invoices.models import PaymentAttempt, WebhookEvent
from invoices.refunds import refunds_from_gateway
from payments.gateways.base import Gateway, GatewayEvent, InvalidPaymentDetails
from payments.models import PaymentMethod
from payments.services import payment_method_adopt, payment_method_refresh, payment_method_remove

logger = logging.getLogger("invoices.webhooks")
Outcome = WebhookEvent.Outcome

REFUNDED = "charge.refunded"
DISPUTE_CREATED = "charge.dispute.created"
SETUP_SUCCEEDED = "setup_intent.succeeded"
METHOD_UPDATED = ("payment_method.updated", "payment_method.automatically_updated")
METHOD_DETACHED = "payment_method.detached"


def _obj(event: GatewayEvent) -> dict:
    return ((event.payload or {}).get("data") or {}).get("object") or {}


def _charged_attempt(gateway: Gateway, event: GatewayEvent) -> PaymentAttempt | None:
    return (
        PaymentAttempt.objects.filter(
            method__gateway=gateway.name,
            gateway_reference=event.reference,
            status=PaymentAttempt.Status.SUCCEEDED,
        )
        .select_related("invoice")
        .first()
    )


def _refunded(gateway: Gateway, event: GatewayEvent):
    attempt = _charged_attempt(gateway, event)
    if attempt is None:
        return Outcome.UNMATCHED, None, "No paid attempt of ours has this charge."
    changed = refunds_from_gateway(
        attempt=attempt, results=gateway.refunds(event.reference), source=f"{gateway.name} webhook"
    )
    return (Outcome.APPLIED if changed else Outcome.UNCHANGED), attempt, ""


def _dispute(gateway: Gateway, event: GatewayEvent):
    """Kept as it came, linked to the attempt, for support (the invoice's and attempt's admin pages
    list their disputes). Nothing of ours changes: the answer to a dispute is support's."""
    attempt = _charged_attempt(gateway, event)
    if attempt is None:
        return Outcome.UNMATCHED, None, "No paid attempt of ours has this charge."
    logger.warning(
        "Charge %s of invoice %s is disputed (%s)",
        event.reference,
        attempt.invoice.number,
        _obj(event).get("reason"),
    )
    return Outcome.APPLIED, attempt, ""


def _setup_succeeded(gateway: Gateway, event: GatewayEvent):
    obj = _obj(event)
    customer = obj.get("customer") or ""
    kinds = obj.get("payment_method_types") or []
    if not customer or len(kinds) != 1:
        return Outcome.UNMATCHED, None, "The SetupIntent names no customer or method kind of ours."
    try:
        method = payment_method_adopt(
            gateway=gateway, customer=customer, kind=kinds[0], reference=event.reference
        )
    except InvalidPaymentDetails as exc:
        return Outcome.UNCHANGED, None, str(exc)
    if method is None:
        return Outcome.UNCHANGED, None, "No account of ours has this customer, or the method is kept already."
    return Outcome.APPLIED, None, ""


def _our_method(gateway: Gateway, event: GatewayEvent) -> PaymentMethod | None:
    return (
        PaymentMethod.objects.filter(gateway=gateway.name, token=event.reference)
        .select_related("account")
        .first()
    )


def _method_updated(gateway: Gateway, event: GatewayEvent):
    method = _our_method(gateway, event)
    if method is None:
        return Outcome.UNMATCHED, None, "No method of ours has this token."
    saved = gateway.saved_method(method.token)
    if saved is None:
        return Outcome.UNCHANGED, None, "The gateway no longer has this method."
    changed = payment_method_refresh(method=method, saved=saved.method, source=f"{gateway.name} webhook")
    return (Outcome.APPLIED if changed else Outcome.UNCHANGED), None, ""


def _method_detached(gateway: Gateway, event: GatewayEvent):
    method = _our_method(gateway, event)
    if method is None:
        return Outcome.UNMATCHED, None, "No method of ours has this token."
    saved = gateway.saved_method(method.token)
    if saved is not None and saved.customer:
        # Attached again since (events come out of order): it stays.
        return Outcome.UNCHANGED, None, ""
    if not method.is_active:
        return Outcome.UNCHANGED, None, ""
    payment_method_remove(method=method, actor=None, actor_label=f"gateway: {gateway.name} webhook")
    return Outcome.APPLIED, None, ""


HANDLERS = {
    REFUNDED: _refunded,
    DISPUTE_CREATED: _dispute,
    SETUP_SUCCEEDED: _setup_succeeded,
    METHOD_DETACHED: _method_detached,
    **dict.fromkeys(METHOD_UPDATED, _method_updated),
}


def handler_for(event_type: str):
    return HANDLERS.get(event_type)
