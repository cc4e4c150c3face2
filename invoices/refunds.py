"""Refunds of paid invoices: support's, made in admin, and those made at the gateway itself.

A refund by support is recorded and committed (``started``) under the invoice's row lock before the
gateway is called, so two refunds at once can never give back more than was paid in total, and a
refund whose answer was lost (``unknown``) keeps its idempotency key: ``refund_resolve`` finds it
among the charge's refunds at the gateway, or repeats the call with that same key. A refund made at
the gateway (Stripe's dashboard) arrives by its ``charge.refunded`` webhook and is recorded here
once, however often the event comes and whichever came first, it or our own answer.

Refunds give money back; they do not reopen the invoice, which stays paid.
"""

import logging

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Prefetch, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import AuditEvent
from accounts.services import audit_record
from core.money import format_money
from payments.gateways import get_gateway
from payments.gateways.base import GatewayError, GatewayUnavailable, RefundResult

from .models import Invoice, PaymentAttempt, Refund

logger = logging.getLogger("invoices.refunds")
Status = Refund.Status


def outside_transactions() -> bool:
    # Tests wrap everything in atomic blocks of their own; those don't count.
    return all(
        getattr(block, "_from_testcase", False) for block in transaction.get_connection().atomic_blocks
    )


def refunded_minor(invoice: Invoice, *, statuses=Refund.COUNTED) -> int:
    """What is refunded, or on its way back, of ``invoice`` (by default: every refund not refused)."""
    return invoice.refunds.filter(status__in=statuses).aggregate(total=Sum("amount_minor"))["total"] or 0


def visible_refunds() -> Prefetch:
    """The refunds a customer sees of each invoice, as ``invoice.visible_refunds``: all but those
    the gateway refused (nothing went back), oldest first."""
    return Prefetch(
        "refunds",
        queryset=Refund.objects.exclude(status=Status.FAILED).order_by("pk"),
        to_attr="visible_refunds",
    )


def customer_refunds(invoice: Invoice) -> list[Refund]:
    """The refunds the customer's invoice page shows (see ``visible_refunds``)."""
    return list(invoice.refunds.exclude(status=Status.FAILED).order_by("pk"))


def refundable_minor(invoice: Invoice) -> int:
    """What support may still refund: what was paid, less every refund not refused."""
    if invoice.status != Invoice.Status.PAID or invoice.paid_by_attempt_id is None:
        return 0
    paid = PaymentAttempt.objects.values_list("amount_minor", flat=True).get(pk=invoice.paid_by_attempt_id)
    return max(0, paid - refunded_minor(invoice))


def _locked_invoice(invoice_id: int) -> Invoice:
    return Invoice.objects.select_for_update(of=("self",)).select_related("account").get(pk=invoice_id)


def refund_record(*, invoice: Invoice, amount_minor: int, actor, reason: str = "", request=None) -> Refund:
    """Record a refund of ``amount_minor`` and commit it, before the gateway hears of it. Raises
    ValidationError when the invoice is not paid or the amount is more than is left to refund."""
    with transaction.atomic():
        invoice = _locked_invoice(invoice.pk)
        if invoice.status != Invoice.Status.PAID:
            raise ValidationError(_("Only a paid invoice can be refunded."), code="not_paid")
        left = refundable_minor(invoice)
        if not 0 < amount_minor <= left:
            raise ValidationError(
                _("At most %(left)s of this invoice can still be refunded.")
                % {"left": format_money(left, invoice.currency)},
                code="too_much",
            )
        refund = Refund.objects.create(
            invoice=invoice,
            attempt_id=invoice.paid_by_attempt_id,
            amount_minor=amount_minor,
            currency=invoice.currency,
            reason=reason[:300],
            requested_by=actor if actor is not None and actor.is_authenticated else None,
        )
        audit_record(
            account=invoice.account,
            action=AuditEvent.Action.REFUND_REQUESTED,
            actor=actor,
            obj=invoice,
            after={"refund": refund.pk, "amount_minor": amount_minor, "currency": invoice.currency},
            request=request,
        )
    return refund


def _finish(refund: Refund, *, status: str, reference: str = "", message: str = "", actor=None, label=""):
    """Write an answer on an unresolved refund, under the invoice's lock; a refund resolved already
    (by a webhook, or another resolve) changes no more. Returns the refund as it is now."""
    with transaction.atomic():
        invoice = _locked_invoice(refund.invoice_id)
        refund = Refund.objects.select_for_update().get(pk=refund.pk)
        if not refund.is_unresolved:
            return refund
        before = refund.status
        refund.status, refund.message = status, message[:300]
        if reference:
            refund.gateway_reference = reference
        if status in (Status.SUCCEEDED, Status.FAILED):
            refund.completed_at = timezone.now()
        refund.save(update_fields=["status", "message", "gateway_reference", "completed_at"])
        if status in (Status.SUCCEEDED, Status.FAILED):
            audit_record(
                account=invoice.account,
                action=AuditEvent.Action.INVOICE_REFUNDED
                if status == Status.SUCCEEDED
                else AuditEvent.Action.REFUND_FAILED,
                actor=actor,
                actor_label=label,
                obj=invoice,
                before={"refund": refund.pk, "status": before},
                after={
                    "refund": refund.pk,
                    "status": status,
                    "amount_minor": refund.amount_minor,
                    "currency": refund.currency,
                    "reference": refund.gateway_reference,
                },
            )
    return refund


def _gateway_for(refund: Refund):
    return get_gateway(refund.attempt.method.gateway)


def refund_send(refund: Refund, *, actor=None) -> Refund:
    """Ask the gateway for a recorded refund, with its own idempotency key, and record the answer.
    Never inside a transaction: the refund is committed first, so a lost answer leaves it
    ``unknown``, to be resolved, never made twice."""
    if not outside_transactions():
        raise RuntimeError("refund_send calls the gateway: never inside a transaction")
    refund = Refund.objects.select_related("attempt__method").get(pk=refund.pk)
    try:
        result = _gateway_for(refund).refund(
            reference=refund.attempt.gateway_reference,
            idempotency_key=refund.idempotency_key,
            amount_minor=refund.amount_minor,
        )
    except GatewayUnavailable as exc:
        logger.warning("Refund %s: outcome unknown (%s)", refund.idempotency_key, exc)
        return _finish(refund, status=Status.UNKNOWN, message=str(exc), actor=actor)
    except GatewayError as exc:
        logger.warning("Refund %s refused by the gateway: %s", refund.idempotency_key, exc)
        return _finish(refund, status=Status.FAILED, message=str(exc), actor=actor)
    return _finish(
        refund,
        status=Status.SUCCEEDED if result.succeeded else Status.FAILED,
        reference=result.reference,
        actor=actor,
    )


def invoice_refund(*, invoice: Invoice, amount_minor: int, actor, reason: str = "", request=None) -> Refund:
    """Support's refund: recorded and committed, then made at the gateway (see the module)."""
    refund = refund_record(
        invoice=invoice, amount_minor=amount_minor, actor=actor, reason=reason, request=request
    )
    return refund_send(refund, actor=actor)


def refund_resolve(refund: Refund, *, actor=None) -> Refund:
    """Settle an unresolved refund: found among the charge's refunds at the gateway by its key, or
    else asked for again with that same key (a list is consistent at once, so a key not in it was
    never used and repeating it cannot refund twice)."""
    refund = Refund.objects.select_related("attempt__method").get(pk=refund.pk)
    if not refund.is_unresolved:
        return refund
    try:
        found = [
            result
            for result in _gateway_for(refund).refunds(refund.attempt.gateway_reference)
            if result.idempotency_key == refund.idempotency_key
        ]
    except GatewayUnavailable as exc:
        logger.warning("Refund %s: the gateway could not be read (%s)", refund.idempotency_key, exc)
        return refund
    if found:
        return _finish(
            refund,
            status=Status.SUCCEEDED if found[0].succeeded else Status.FAILED,
            reference=found[0].reference,
            actor=actor,
        )
    return refund_send(refund, actor=actor)


def refunds_from_gateway(*, attempt: PaymentAttempt, results: list[RefundResult], source: str) -> int:
    """Take in the charge's refunds as the gateway has them now (read again after its
    ``charge.refunded`` webhook): ours are matched by reference or key and resolved; one made at the
    gateway itself is recorded once. Returns how many changed. Takes the invoice's lock itself."""
    changed = 0
    for result in results:
        if not result.succeeded:
            continue
        with transaction.atomic():
            invoice = _locked_invoice(attempt.invoice_id)
            ours = Refund.objects.filter(invoice=invoice)
            if ours.filter(gateway_reference=result.reference).exists():
                continue
            mine = ours.filter(status__in=Refund.UNRESOLVED).select_related("attempt")
            match = next((r for r in mine if r.idempotency_key == result.idempotency_key), None)
            if match is None:
                refund = Refund.objects.create(
                    invoice=invoice,
                    attempt=attempt,
                    amount_minor=result.amount_minor,
                    currency=result.currency,
                    source=Refund.Source.GATEWAY,
                    status=Status.STARTED,
                )
            else:
                refund = match
            _finish(refund, status=Status.SUCCEEDED, reference=result.reference, label=f"gateway: {source}")
        changed += 1
    return changed
