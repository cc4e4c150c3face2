"""Webhooks: ``/webhooks/<gateway>/`` takes a gateway's signed events and applies them to our attempts.

1. The gateway checks the signature (``parse_event``): a missing, wrong or stale one is a 400 and
   nothing is kept.
2. Each event is stored once, by its id per gateway. A redelivery answers 200 again and applies
   nothing more.
3. The attempt is found by the charge's idempotency key or reference, and the charge is read again
   from the gateway, outside any transaction: events come late, twice or out of order, so the
   gateway's current answer decides, not the event.
4. One short transaction locks the event, the invoice and the attempt, and applies that answer
   through the invoice state machine; an attempt already resolved changes no more.

A gateway that could not be read leaves the event stored but unprocessed and answers 503, so the
gateway delivers it again. Neither the stored payload nor the log holds a card number.
"""

import logging
import re

from django.db import transaction
from django.http import Http404, HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from invoices import transitions, webhook_objects
from invoices.models import PaymentAttempt, WebhookEvent
from invoices.settlement.resolve import attempt_for_update, attempt_result_apply
from payments.gateways import gateway_paths, get_gateway
from payments.gateways.base import (
    ChargeResult,
    Gateway,
    GatewayEvent,
    GatewayUnavailable,
    WebhookSignatureError,
)
from payments.gateways.validation import luhn_valid

logger = logging.getLogger("invoices.webhooks")
Outcome = WebhookEvent.Outcome

# 13 to 19 digits, maybe grouped by spaces or dashes: the shape of a card number.
_CARD_NUMBER = re.compile(r"(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)")


def _without_card_numbers(value):
    """``value`` with every Luhn-valid card-shaped number in its strings replaced: a payload is kept
    for support to read, and a gateway must never make us keep a card number."""
    if isinstance(value, str):
        return _CARD_NUMBER.sub(
            lambda m: "[redacted]" if luhn_valid(re.sub(r"\D", "", m.group())) else m.group(), value
        )
    if isinstance(value, dict):
        return {key: _without_card_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_card_numbers(item) for item in value]
    return value


def webhook_event_store(*, gateway: str, event: GatewayEvent) -> tuple[WebhookEvent, bool]:
    """The stored event with this id, and whether this call stored it."""
    return WebhookEvent.objects.get_or_create(
        gateway=gateway,
        event_id=event.id,
        defaults={
            "type": event.type[:64],
            "reference": event.reference[:128],
            "payload": _without_card_numbers(dict(event.payload)),
        },
    )


def _attempt_for(*, gateway: str, event: GatewayEvent) -> PaymentAttempt | None:
    attempts = PaymentAttempt.objects.filter(method__gateway=gateway).exclude(
        status=PaymentAttempt.Status.SKIPPED
    )
    if event.idempotency_key:
        found = attempts.filter(idempotency_key=event.idempotency_key).first()
        if found is not None:
            return found
    if event.reference:
        return attempts.filter(gateway_reference=event.reference).order_by("pk").first()
    return None


def _matches(attempt: PaymentAttempt, result: ChargeResult | None) -> bool:
    """The charge read back is this attempt's: never apply another charge's outcome to it."""
    return result is not None and (
        result.idempotency_key,
        result.amount_minor,
        result.currency.upper(),
    ) == (attempt.idempotency_key, attempt.amount_minor, attempt.currency)


def charge_now(gateway: Gateway, *, reference: str = "", idempotency_key: str = "") -> ChargeResult | None:
    """The charge as the gateway has it now (None if it has none), by reference or else by key.
    A remote call: never inside a database transaction."""
    if reference:
        return gateway.retrieve(reference)
    return gateway.find(idempotency_key)


def _finish(stored: WebhookEvent, outcome: str, *, attempt=None, error: str = "") -> WebhookEvent:
    stored.outcome, stored.error = outcome, error[:300]
    stored.attempt = attempt or stored.attempt
    if outcome != Outcome.ERROR:
        stored.processed_at = timezone.now()
    stored.save(update_fields=["outcome", "error", "attempt", "processed_at"])
    return stored


def webhook_event_process(*, stored: WebhookEvent, event: GatewayEvent, gateway: Gateway) -> WebhookEvent:
    """Apply a stored, not yet processed event: re-read its charge, then apply that under locks.

    Raises GatewayUnavailable when the gateway could not be read; the event stays unprocessed."""
    handler = webhook_objects.handler_for(event.type)
    if handler is not None:
        return _process_object(stored=stored, event=event, gateway=gateway, handler=handler)
    attempt = _attempt_for(gateway=stored.gateway, event=event)
    if attempt is None:
        return _finish(stored, Outcome.UNMATCHED, error="No attempt of ours has this charge.")
    if not transitions.ATTEMPT_TRANSITIONS[attempt.status]:
        # A final attempt (succeeded, failed, …) never changes again: no need to ask the gateway.
        return _finish(stored, Outcome.UNCHANGED, attempt=attempt)
    try:
        result = charge_now(
            gateway,
            reference=event.reference or attempt.gateway_reference,
            idempotency_key=attempt.idempotency_key,
        )
    except GatewayUnavailable as exc:
        _finish(stored, Outcome.ERROR, attempt=attempt, error=f"The gateway could not be read: {exc}")
        raise
    if not _matches(attempt, result):
        logger.warning(
            "Webhook %s %s names attempt %s, but the gateway's charge %s is not its charge",
            stored.gateway,
            stored.event_id,
            attempt.idempotency_key,
            event.reference,
        )
        return _finish(
            stored, Outcome.UNMATCHED, attempt=attempt, error="The gateway's charge is not this attempt's."
        )
    with transaction.atomic():
        stored = WebhookEvent.objects.select_for_update().get(pk=stored.pk)
        if stored.processed_at is not None:
            return stored  # the same event, delivered twice at once, was applied by the other delivery
        attempt = attempt_for_update(idempotency_key=attempt.idempotency_key)  # invoice, then attempt
        changed = attempt_result_apply(attempt=attempt, result=result, source=f"{stored.gateway} webhook")
        return _finish(stored, Outcome.APPLIED if changed else Outcome.UNCHANGED, attempt=attempt)


def _process_object(*, stored: WebhookEvent, event: GatewayEvent, gateway: Gateway, handler) -> WebhookEvent:
    """An event about a refund, a dispute or a saved method (see ``webhook_objects``). The handler
    reads the gateway and applies under its own locks; the event is marked processed after, once."""
    try:
        outcome, attempt, error = handler(gateway, event)
    except GatewayUnavailable as exc:
        _finish(stored, Outcome.ERROR, error=f"The gateway could not be read: {exc}")
        raise
    with transaction.atomic():
        stored = WebhookEvent.objects.select_for_update().get(pk=stored.pk)
        if stored.processed_at is not None:
            return stored
        return _finish(stored, outcome, attempt=attempt, error=error)


def _answer(stored: WebhookEvent, *, duplicate: bool, status: int = 200) -> JsonResponse:
    return JsonResponse(
        {"received": True, "event": stored.event_id, "duplicate": duplicate, "outcome": stored.outcome},
        status=status,
    )


@csrf_exempt  # the gateway's signature, not a browser's cookie, proves who sent it
@require_POST
@transaction.non_atomic_requests  # the gateway is read outside any transaction
def webhook_receive(request: HttpRequest, gateway: str) -> JsonResponse:
    if gateway not in gateway_paths():
        raise Http404("No such gateway.")
    source = get_gateway(gateway)
    try:
        event = source.parse_event(request.body, request.headers)
        if not event.id or len(event.id) > 255:
            raise WebhookSignatureError("The event has no usable id.")
    except WebhookSignatureError as exc:
        logger.warning("Refused a %s webhook: %s", gateway, exc)
        return JsonResponse({"error": "invalid_signature"}, status=400)
    stored, created = webhook_event_store(gateway=gateway, event=event)
    if stored.processed_at is not None:
        logger.info("Webhook %s %s received again; applied before", gateway, event.id)
        return _answer(stored, duplicate=True)
    try:
        stored = webhook_event_process(stored=stored, event=event, gateway=source)
    except GatewayUnavailable:
        logger.warning(
            "Webhook %s %s: the gateway could not be read; it will be sent again", gateway, event.id
        )
        return _answer(stored, duplicate=not created, status=503)
    except Exception as exc:
        logger.exception("Webhook %s %s could not be applied", gateway, event.id)
        _finish(stored, Outcome.ERROR, error=f"{type(exc).__name__}: {exc}")
        return _answer(stored, duplicate=not created, status=500)
    logger.info(
        "Webhook %s %s (%s) for %s: %s", gateway, event.id, event.type, event.reference, stored.outcome
    )
    return _answer(stored, duplicate=not created)
