"""Applying an outcome that arrives outside a settlement run (a gateway webhook) to its attempt,
through the state machine."""

import logging

from django.db import transaction

from core.bulk import insert_rows
from invoices import transitions
from invoices.models import Invoice, PaymentAttempt
from notifications.services import notification_queue_many
from payments.gateways.base import ChargeResult
from payments.models import PaymentMethod

from . import emails
from .standing import accounts_follow

logger = logging.getLogger("invoices.settlement")
Status = PaymentAttempt.Status


def attempt_result_apply(*, attempt: PaymentAttempt, result: ChargeResult, source: str) -> bool:
    """Apply the gateway's current word on ``attempt`` (re-read from the gateway, not taken from an
    event's body). Runs in the caller's transaction, which must hold the invoice's row lock and
    have read ``attempt`` under it. Returns whether anything changed.

    - succeeded: the invoice is paid (if it is still collectable);
    - failed or requires_action: the attempt is closed and the invoice is due now, so the next run
      goes on at the next method (never the one that declined);
    - pending: nothing changes.
    An attempt already resolved changes nothing: a "failed" that arrives after a "succeeded" is
    ignored."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("attempt_result_apply must run in the transaction holding the invoice lock")
    if attempt.status == transitions.target_status(result) or not transitions.attempt_may_record(
        attempt, result
    ):
        return False
    invoice = attempt.invoice
    ctx = transitions.context_now(actor_label=f"gateway: {source}")
    status = transitions.attempt_record(attempt, result, now=ctx.now)
    attempt.save(update_fields=transitions.ATTEMPT_OUTCOME_FIELDS)
    if transitions.attempt_blocks_method(attempt):
        PaymentMethod.objects.filter(pk=attempt.method_id, blocked_at__isnull=True).update(
            blocked_at=ctx.now, blocked_reason=attempt.decline_code
        )
    if status == Status.SUCCEEDED:
        if not invoice.is_collectable:
            # Nothing else is charged while an attempt is unresolved, so only a close by support
            # can come between: the money is in, and support must refund or reopen by hand.
            logger.error(
                "Attempt %s succeeded after invoice %s became %s.",
                attempt.idempotency_key,
                invoice.number,
                invoice.status,
            )
            return True
        change = transitions.invoice_paid(invoice=invoice, attempt=attempt, ctx=ctx)
        invoice.save(update_fields=[*change.invoice_fields, "updated_at"])
        insert_rows(change.audits)
        if change.standing:
            accounts_follow({invoice.account_id: [(change.standing, invoice)]})
        notifications = [emails.receipt(invoice=invoice, attempt=attempt)]
        if invoice.paid_by_backup:
            failed = list(
                invoice.attempts.filter(
                    retry_round=attempt.retry_round, sequence__lt=attempt.sequence, status=Status.FAILED
                ).select_related("method")
            )
            notifications.append(emails.backup_charged(invoice=invoice, attempt=attempt, failed=failed))
        notification_queue_many(notifications)
    elif status in (Status.FAILED, Status.REQUIRES_ACTION):
        if status == Status.REQUIRES_ACTION and invoice.is_collectable:
            notification_queue_many([emails.authentication_required(invoice=invoice, attempt=attempt)])
        change = transitions.invoice_due_now(invoice=invoice, ctx=ctx)
        if change.invoice_fields:
            invoice.save(update_fields=[*change.invoice_fields, "updated_at"])
    return True


def attempt_for_update(*, reference: str = "", idempotency_key: str = "") -> PaymentAttempt | None:
    """The attempt a gateway names, read under its invoice's row lock (take it first, then the
    attempt: the order the settlement engine locks in). Call inside a transaction."""
    lookup = {"gateway_reference": reference} if reference else {"idempotency_key": idempotency_key}
    if not (reference or idempotency_key):
        return None
    found = (
        PaymentAttempt.objects.filter(**lookup)
        .exclude(status=Status.SKIPPED)
        .values_list("invoice_id", "pk")
        .first()
    )
    if found is None and reference and idempotency_key:
        found = (
            PaymentAttempt.objects.filter(idempotency_key=idempotency_key)
            .values_list("invoice_id", "pk")
            .first()
        )
    if found is None:
        return None
    invoice = Invoice.objects.select_for_update(of=("self",)).select_related("account").get(pk=found[0])
    attempt = PaymentAttempt.objects.select_for_update(of=("self",)).select_related("method").get(pk=found[1])
    attempt.invoice = invoice
    return attempt
