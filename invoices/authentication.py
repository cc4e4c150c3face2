"""Completing a charge the customer's bank wants them to confirm themselves (3-D Secure).

The settlement records such an attempt ``requires_action``, moves on to the next method and emails
the customer a link to the invoice's authenticate page. There:

1. ``authentication_start`` reads the charge again from the gateway (outside any transaction). If
   the invoice is still open and the charge still waits, the page confirms it in the browser with
   the processor's script (Stripe.js). If the invoice was paid by a backup meanwhile, or closed,
   the charge is cancelled at the gateway, so it can never be confirmed, and the page says so.
   While the page holds the charge's secret, the invoice is leased to it (``AUTHENTICATION_HOLD_SECONDS``)
   as a settlement run leases the invoices it works on: no run charges another method of it
   meanwhile, so the customer's confirmation cannot become a second payment. A run already
   working on the invoice keeps it, and the page says to come back in a moment.
2. ``authentication_finish`` runs after the browser is done. It never trusts what the browser
   says: it reads the charge again from the gateway and applies that answer through the state
   machine, under the invoice's lock, as a webhook would.
"""

import dataclasses
import datetime
import enum
import functools
import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from invoices import transitions
from invoices.models import Invoice, PaymentAttempt
from payments.gateways import get_gateway
from payments.gateways.base import ChargeResult, ChargeStatus, GatewayUnavailable

from .settlement.claim import claim_one, new_lease, release
from .settlement.resolve import attempt_for_update, attempt_result_apply

# The lease owner of an invoice the authenticate page holds for the customer.
HOLD_OWNER = "authentication page"

logger = logging.getLogger("invoices.authentication")
Status = PaymentAttempt.Status


class Stage(enum.StrEnum):
    AUTHENTICATE = "authenticate"  # the charge waits for the customer: confirm it in the browser
    PAID = "paid"  # the invoice is paid (by this charge, or another)
    CLOSED = "closed"  # the invoice was voided or written off
    FAILED = "failed"  # the bank refused the charge: the invoice is tried again with the next method
    NOTHING = "nothing"  # no charge of this invoice waits for the customer
    UNAVAILABLE = "unavailable"  # the gateway did not answer: nothing changed, try again
    BUSY = "busy"  # a settlement run is charging the invoice right now: try again in a moment


@dataclasses.dataclass(frozen=True)
class Authentication:
    stage: Stage
    attempt: PaymentAttempt | None = None
    client_secret: str = ""
    publishable_key: str = ""


def waiting_attempt(invoice: Invoice) -> PaymentAttempt | None:
    """The invoice's latest charge that waits for the customer to authenticate."""
    return (
        invoice.attempts.filter(status=Status.REQUIRES_ACTION)
        .select_related("method")
        .order_by("-sequence")
        .first()
    )


def _stage_of(invoice: Invoice) -> Stage:
    if invoice.status == Invoice.Status.PAID:
        return Stage.PAID
    return Stage.CLOSED if not invoice.is_collectable else Stage.NOTHING


def _apply(attempt: PaymentAttempt, result: ChargeResult, *, source: str) -> Invoice:
    with transaction.atomic():
        locked = attempt_for_update(idempotency_key=attempt.idempotency_key)
        attempt_result_apply(attempt=locked, result=result, source=source)
        return locked.invoice


def _cancel_waiting(invoice: Invoice, *, keep: PaymentAttempt | None = None) -> None:
    """The invoice no longer needs these charges (all but ``keep``): cancel each at the gateway
    (outside any transaction), then close its attempt. A charge the customer confirmed in between
    is applied as it is: the money is in, and support refunds it."""
    waiting = invoice.attempts.filter(status=Status.REQUIRES_ACTION).select_related("method")
    if keep is not None:
        waiting = waiting.exclude(pk=keep.pk)
    for attempt in waiting:
        result = get_gateway(attempt.method.gateway).cancel(attempt.gateway_reference)
        with transaction.atomic():
            locked = attempt_for_update(idempotency_key=attempt.idempotency_key)
            if locked.status != Status.REQUIRES_ACTION:
                continue
            if result is not None and result.status == ChargeStatus.SUCCEEDED:
                attempt_result_apply(attempt=locked, result=result, source="authentication page")
                continue
            if result is not None and result.status != ChargeStatus.FAILED:
                # Not cancelled, and not charged: it stays waiting, and the next visit tries again.
                logger.warning(
                    "Attempt %s could not be cancelled: it is %s", attempt.idempotency_key, result.status
                )
                continue
            transitions.attempt_cancel(
                locked,
                now=transitions.context_now().now,
                message=f"Cancelled: the invoice was {invoice.status} before the customer authenticated.",
            )
            locked.save(update_fields=transitions.ATTEMPT_OUTCOME_FIELDS)
        logger.info(
            "Attempt %s cancelled: invoice %s is %s", attempt.idempotency_key, invoice.number, invoice.status
        )


def _unless_unavailable(step):
    """A gateway that does not answer changes nothing here: the page says so, and asks again."""

    @functools.wraps(step)
    def wrapped(invoice: Invoice, **kwargs) -> Authentication:
        try:
            return step(invoice, **kwargs)
        except GatewayUnavailable as exc:
            logger.warning(
                "Authentication of invoice %s: the gateway did not answer (%s)", invoice.number, exc
            )
            return Authentication(stage=Stage.UNAVAILABLE)

    return wrapped


@_unless_unavailable
def authentication_start(invoice: Invoice) -> Authentication:
    """What the authenticate page shows (see the module). Calls the gateway: never inside a
    transaction."""
    invoice.refresh_from_db()
    if not invoice.is_collectable:
        _cancel_waiting(invoice)
        return Authentication(stage=_stage_of(invoice))
    attempt = waiting_attempt(invoice)
    if attempt is None:
        return Authentication(stage=Stage.NOTHING)
    # One charge at a time can be confirmed: the latest. An earlier round's is cancelled first (and
    # if the customer had confirmed that one after all, it paid the invoice: nothing more to confirm).
    _cancel_waiting(invoice, keep=attempt)
    invoice.refresh_from_db()
    if not invoice.is_collectable:
        _cancel_waiting(invoice)
        return Authentication(stage=_stage_of(invoice))
    gateway = get_gateway(attempt.method.gateway)
    result = gateway.retrieve(attempt.gateway_reference)
    if result is not None and result.status == ChargeStatus.REQUIRES_ACTION and result.action_secret:
        if not _hold(invoice):
            return Authentication(stage=Stage.BUSY, attempt=attempt)
        return Authentication(
            stage=Stage.AUTHENTICATE,
            attempt=attempt,
            client_secret=result.action_secret,
            publishable_key=publishable_key(gateway.name),
        )
    if result is None or result.status == ChargeStatus.REQUIRES_ACTION:
        return Authentication(stage=Stage.NOTHING, attempt=attempt)
    invoice = _apply(attempt, result, source="authentication page")
    return Authentication(stage=_finished_stage(invoice, result), attempt=attempt)


def _hold(invoice: Invoice) -> bool:
    """Lease the invoice to the page while the customer authenticates (see the module); False if a
    settlement run holds it now. Asking again (a reload) renews the page's own hold."""
    until = timezone.now() + datetime.timedelta(seconds=settings.AUTHENTICATION_HOLD_SECONDS)
    lease = new_lease(owner=HOLD_OWNER)
    return claim_one(invoice_id=invoice.pk, lease=lease, until=until, reclaim_owner=HOLD_OWNER) is not None


def _finished_stage(invoice: Invoice, result: ChargeResult) -> Stage:
    if invoice.status == Invoice.Status.PAID:
        return Stage.PAID
    if not invoice.is_collectable:
        return Stage.CLOSED
    return Stage.FAILED if result.status == ChargeStatus.FAILED else Stage.NOTHING


@_unless_unavailable
def authentication_finish(invoice: Invoice, *, attempt_id: int) -> Authentication:
    """After the browser confirmed (or gave up): the gateway's answer, read again, applied."""
    attempt = invoice.attempts.filter(pk=attempt_id).select_related("method").first()
    if attempt is None or attempt.status != Status.REQUIRES_ACTION:
        invoice.refresh_from_db()
        return Authentication(stage=_stage_of(invoice), attempt=attempt)
    result = get_gateway(attempt.method.gateway).retrieve(attempt.gateway_reference)
    if result is None or result.status == ChargeStatus.REQUIRES_ACTION:
        return authentication_start.__wrapped__(invoice)  # still waiting: the page asks again
    invoice = _apply(attempt, result, source="authentication page")
    release(invoice_ids=[invoice.pk], owner=HOLD_OWNER)
    if not invoice.is_collectable:
        _cancel_waiting(invoice)  # paid (or closed): no other charge of it may be confirmed now
    if result.status == ChargeStatus.SUCCEEDED and invoice.paid_by_attempt_id != attempt.pk:
        logger.error(
            "Attempt %s was authenticated after invoice %s was %s: support must refund it.",
            attempt.idempotency_key,
            invoice.number,
            invoice.status,
        )
    return Authentication(stage=_finished_stage(invoice, result), attempt=attempt)


def publishable_key(gateway_name: str) -> str:
    """The processor's browser key for the page's script (Stripe's publishable key)."""
    return settings.STRIPE_PUBLISHABLE_KEY if gateway_name == "stripe" else ""
