"""Settling one claimed invoice: resolve what is unresolved, then charge down the charge order.

The rules that keep every invoice charged at most once:
- an attempt row (status ``started``, deterministic idempotency key) commits before the gateway
  is called, and the call happens outside any transaction;
- every write after a call is fenced on the invoice's lease token: a worker that stalled past its
  lease and was replaced changes nothing;
- an attempt whose outcome is unknown is resolved by asking the gateway, or by repeating the
  call with the same key (which the gateway answers without charging twice), never with a new key;
- while any attempt is unresolved nothing else is charged for that invoice.
"""

import dataclasses
import datetime
import logging

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.models import Account, AuditEvent
from accounts.services import account_set_status, audit_record
from invoices.models import Invoice, PaymentAttempt, SettlementRun
from payments import declines
from payments.gateways import get_gateway
from payments.gateways.base import ChargeResult, ChargeStatus, GatewayUnavailable
from payments.models import PaymentMethod

from . import emails
from .outcomes import InvoiceResult, Outcome
from .plan import PlanStep, build_plan, position_label

logger = logging.getLogger("invoices.settlement")
Status = PaymentAttempt.Status
SETTLEMENT_ACTOR = "settlement"


@dataclasses.dataclass(frozen=True)
class Lease:
    token: str
    owner: str


@dataclasses.dataclass
class Context:
    invoice: Invoice
    lease: Lease
    as_of: datetime.datetime
    trigger: str = PaymentAttempt.Trigger.SCHEDULE
    actor: object = None
    run: SettlementRun | None = None
    failed: list = dataclasses.field(default_factory=list)  # attempts declined in this cascade

    @property
    def scheduled(self) -> bool:
        return self.trigger == PaymentAttempt.Trigger.SCHEDULE

    @property
    def actor_label(self) -> str:
        if self.actor is None:
            return SETTLEMENT_ACTOR
        return ("staff: " if self.actor.is_staff else "") + self.actor.get_username()


class LeaseLost(Exception):
    pass


def _outside_transactions() -> bool:
    # Tests wrap everything in atomic blocks of their own; those don't count.
    return not any(not getattr(block, "_from_testcase", False) for block in connection.atomic_blocks)


def _later_than_run(ctx: Context, when: datetime.datetime) -> datetime.datetime:
    """A reschedule is always after this run's as-of, so one run never picks an invoice twice."""
    return max(when, ctx.as_of + datetime.timedelta(microseconds=1))


def _fence(ctx: Context) -> Invoice:
    """Lock the invoice if, and only if, this worker still holds its lease."""
    invoice = (
        Invoice.objects.select_for_update()
        .select_related("account")
        .filter(pk=ctx.invoice.pk, lease_token=ctx.lease.token)
        .first()
    )
    if invoice is None:
        raise LeaseLost(ctx.invoice.number)
    ctx.invoice = invoice
    return invoice


def _release(invoice: Invoice) -> list[str]:
    invoice.lease_token, invoice.lease_owner, invoice.lease_expires_at = "", "", None
    return ["lease_token", "lease_owner", "lease_expires_at"]


def _next_sequence(invoice: Invoice) -> int:
    return (invoice.attempts.aggregate(n=Max("sequence"))["n"] or 0) + 1


def _skip_rows(ctx: Context, skips: list[PlanStep], first_sequence: int) -> list[PaymentAttempt]:
    return [
        PaymentAttempt(
            invoice=ctx.invoice,
            sequence=first_sequence + i,
            method=step.method,
            position=step.position,
            retry_round=ctx.invoice.retry_round,
            amount_minor=ctx.invoice.amount_minor,
            currency=ctx.invoice.currency,
            status=Status.SKIPPED,
            skip_reason=step.skip_reason,
            trigger=ctx.trigger,
            initiated_by=ctx.actor,
            run=ctx.run,
            completed_at=timezone.now(),
        )
        for i, step in enumerate(skips)
    ]


def _write_skips(ctx: Context, skips: list[PlanStep]) -> int:
    """Record skipped methods (in the caller's fenced transaction)."""
    if skips:
        PaymentAttempt.objects.bulk_create(_skip_rows(ctx, skips, _next_sequence(ctx.invoice)))
    return len(skips)


def _start_attempt(ctx: Context, step: PlanStep, skips: list[PlanStep]) -> PaymentAttempt | None:
    """Commit the skips so far and a ``started`` attempt for ``step``. None if the method can no
    longer be charged (removed or blocked since the claim): it is recorded as a skip instead."""
    with transaction.atomic():
        invoice = _fence(ctx)
        method = PaymentMethod.objects.get(pk=step.method.pk)
        late_reason = ""
        if not method.is_active:
            late_reason = PaymentAttempt.SkipReason.REMOVED
        elif method.blocked_at is not None:
            late_reason = PaymentAttempt.SkipReason.BLOCKED
        if late_reason:
            skips.append(dataclasses.replace(step, method=method, skip_reason=late_reason))
            return None
        sequence = _next_sequence(invoice)
        if skips:
            PaymentAttempt.objects.bulk_create(_skip_rows(ctx, skips, sequence))
            sequence += len(skips)
            skips.clear()
        attempt = PaymentAttempt.objects.create(
            invoice=invoice,
            sequence=sequence,
            method=method,
            position=step.position,
            retry_round=invoice.retry_round,
            amount_minor=invoice.amount_minor,
            currency=invoice.currency,
            status=Status.STARTED,
            idempotency_key=f"settle-{invoice.pk}-{sequence}",
            trigger=ctx.trigger,
            initiated_by=ctx.actor,
            run=ctx.run,
        )
        # Heartbeat: a worker that is making progress keeps its lease.
        Invoice.objects.filter(pk=invoice.pk).update(
            lease_expires_at=timezone.now() + datetime.timedelta(seconds=settings.BILLING_LEASE_SECONDS)
        )
    attempt.method = method
    return attempt


def _call_gateway(attempt: PaymentAttempt, *, replay: bool = False) -> ChargeResult | None:
    """Charge (or, for an unresolved attempt, resolve) outside any transaction. None means the
    outcome is unknown."""
    if not _outside_transactions():
        raise RuntimeError("A gateway call must never run inside a database transaction.")
    gateway = get_gateway(attempt.method.gateway)
    # A processor answers in its own language; what we store is translated when shown.
    with translation.override(settings.LANGUAGE_CODE):
        return _charge_or_resolve(gateway, attempt, replay=replay)


def _charge_or_resolve(gateway, attempt: PaymentAttempt, *, replay: bool) -> ChargeResult | None:
    try:
        if replay:
            found = gateway.lookup(idempotency_key=attempt.idempotency_key)
            if found is not None:
                return found
            if attempt.status == Status.PENDING:
                return None
        # First call, or an attempt the gateway has no record of: the same key makes repeating it safe.
        return gateway.charge(
            token=attempt.method.token,
            amount_minor=attempt.amount_minor,
            currency=attempt.currency,
            idempotency_key=attempt.idempotency_key,
            timeout=settings.GATEWAY_TIMEOUT_SECONDS,
        )
    except GatewayUnavailable as exc:
        logger.warning("Gateway did not answer for attempt %s: %s", attempt.idempotency_key, exc)
        return None


def _record(ctx: Context, attempt: PaymentAttempt, result: ChargeResult | None) -> str:
    """Write the outcome of one call, fenced on the lease. Returns the attempt's new status."""
    now = timezone.now()
    if result is None:
        status, fields = Status.UNKNOWN, {"message": "The gateway did not answer in time."}
    elif result.status == ChargeStatus.SUCCEEDED:
        status, fields = Status.SUCCEEDED, {"completed_at": now}
    elif result.status == ChargeStatus.PENDING:
        status, fields = Status.PENDING, {}
    else:
        status = Status.FAILED
        fields = {
            "completed_at": now,
            "decline_code": result.decline_code,
            "decline_class": declines.decline_class(result.decline_code),
            "message": result.message[:300],
        }
    if result is not None:
        fields["gateway_reference"] = result.reference
    with transaction.atomic():
        invoice = _fence(ctx)
        PaymentAttempt.objects.filter(pk=attempt.pk).update(status=status, **fields)
        for name, value in fields.items():
            setattr(attempt, name, value)
        attempt.status = status
        if status == Status.FAILED:
            ctx.failed.append(attempt)
            if attempt.decline_class == declines.HARD:
                PaymentMethod.objects.filter(pk=attempt.method_id, blocked_at__isnull=True).update(
                    blocked_at=now, blocked_reason=attempt.decline_code
                )
        elif status == Status.SUCCEEDED:
            _mark_paid(ctx, invoice, attempt)
        else:
            # Pending or unknown: let go, so the next run (any worker) resolves it first.
            invoice.next_attempt_at = _later_than_run(ctx, now)
            invoice.save(update_fields=["next_attempt_at", "updated_at", *_release(invoice)])
    return status


def _mark_paid(ctx: Context, invoice: Invoice, attempt: PaymentAttempt) -> None:
    before = invoice.status
    invoice.status = Invoice.Status.PAID
    invoice.paid_at = timezone.now()
    invoice.paid_by_attempt = attempt
    invoice.paid_by_method_id = attempt.method_id
    invoice.paid_by_backup = (attempt.position or 1) > 1
    invoice.next_attempt_at = None
    invoice.save(
        update_fields=[
            "status",
            "paid_at",
            "paid_by_attempt",
            "paid_by_method",
            "paid_by_backup",
            "next_attempt_at",
            "updated_at",
            *_release(invoice),
        ]
    )
    account = invoice.account
    audit_record(
        account=account,
        action=AuditEvent.Action.INVOICE_PAID,
        actor=ctx.actor,
        actor_label=ctx.actor_label,
        obj=invoice,
        before={"status": before},
        after={"status": invoice.status, "method": attempt.method_id, "position": attempt.position},
    )
    # A later payment restores an account, once nothing is left past due.
    if account.status != Account.Status.ACTIVE and not (
        Invoice.objects.filter(account=account, status=Invoice.Status.PAST_DUE).exists()
    ):
        account_set_status(
            account=account,
            status=Account.Status.ACTIVE,
            actor_label=SETTLEMENT_ACTOR,
            reason="payment received",
        )
    if invoice.paid_by_backup:
        emails.backup_charged(invoice=invoice, attempt=attempt, failed=ctx.failed)


def _all_failed(ctx: Context, skips: list[PlanStep]) -> Outcome:
    """Every method failed or was skipped. A scheduled run moves the invoice along the retry
    schedule; Pay now and Retry now leave the schedule alone."""
    with transaction.atomic():
        invoice = _fence(ctx)
        _write_skips(ctx, skips)
        fields = _release(invoice)
        if not ctx.scheduled:
            invoice.save(update_fields=[*fields, "updated_at"])
            return Outcome.DECLINED
        now = timezone.now()
        before = invoice.status
        schedule = settings.BILLING_RETRY_DAYS
        account = invoice.account
        if invoice.retry_round >= len(schedule):
            invoice.status = Invoice.Status.UNCOLLECTIBLE
            invoice.next_attempt_at = None
            outcome = Outcome.UNCOLLECTIBLE
        else:
            invoice.status = Invoice.Status.PAST_DUE
            invoice.first_failed_at = invoice.first_failed_at or ctx.as_of
            delay = datetime.timedelta(days=schedule[invoice.retry_round])
            invoice.next_attempt_at = _later_than_run(ctx, invoice.first_failed_at + delay)
            invoice.retry_round += 1
            outcome = Outcome.PAST_DUE
        invoice.save(
            update_fields=[
                *fields,
                "status",
                "next_attempt_at",
                "first_failed_at",
                "retry_round",
                "updated_at",
            ]
        )
        audit_record(
            account=account,
            action=AuditEvent.Action.INVOICE_UNCOLLECTIBLE
            if outcome == Outcome.UNCOLLECTIBLE
            else AuditEvent.Action.INVOICE_PAST_DUE,
            actor_label=SETTLEMENT_ACTOR,
            obj=invoice,
            before={"status": before},
            after={"status": invoice.status, "retry_round": invoice.retry_round, "at": now.isoformat()},
        )
        if outcome == Outcome.UNCOLLECTIBLE:
            if account_set_status(
                account=account,
                status=Account.Status.SUSPENDED,
                actor_label=SETTLEMENT_ACTOR,
                reason=f"invoice {invoice.number} uncollectible",
            ):
                emails.account_suspended(invoice=invoice)
        else:
            if account.status == Account.Status.ACTIVE:
                account_set_status(
                    account=account,
                    status=Account.Status.PAST_DUE,
                    actor_label=SETTLEMENT_ACTOR,
                    reason=f"invoice {invoice.number} past due",
                )
            emails.all_failed(invoice=invoice, failed=ctx.failed, skipped=skips)
    return outcome


def _result(ctx: Context, outcome: Outcome, **kwargs) -> InvoiceResult:
    return InvoiceResult(invoice_id=ctx.invoice.pk, number=ctx.invoice.number, outcome=outcome, **kwargs)


def _paid_result(ctx: Context, attempt: PaymentAttempt, **kwargs) -> InvoiceResult:
    by_backup = (attempt.position or 1) > 1
    return _result(
        ctx,
        Outcome.PAID,
        paid_by_backup=by_backup,
        paid_position=attempt.position,
        message=_("Paid with %(method)s (%(position)s).")
        % {"method": attempt.method.label, "position": position_label(attempt.position)},
        **kwargs,
    )


def _stopped_result(ctx: Context, status: str, **kwargs) -> InvoiceResult:
    if status == Status.PENDING:
        return _result(ctx, Outcome.PENDING, message=_("A bank debit is still clearing."), **kwargs)
    return _result(
        ctx, Outcome.UNKNOWN, message=_("The payment gateway did not answer; we will check again."), **kwargs
    )


def reconcile_claimed(ctx: Context) -> tuple[InvoiceResult | None, int]:
    """Resolve the invoice's unresolved attempts, oldest first. Returns a final result if one of
    them settles the matter (paid, still pending, still unknown), else the rank to resume after."""
    resume_after = 0
    unresolved = PaymentAttempt.objects.filter(invoice=ctx.invoice, status__in=PaymentAttempt.UNRESOLVED)
    for attempt in unresolved.select_related("method").order_by("sequence"):
        status = _record(ctx, attempt, _call_gateway(attempt, replay=True))
        if status == Status.SUCCEEDED:
            return _paid_result(ctx, attempt, attempts=1), 0
        if status != Status.FAILED:
            return _stopped_result(ctx, status, attempts=1), 0
        resume_after = attempt.position or 0
    return None, resume_after


def cascade_claimed(
    ctx: Context, *, order: list[tuple[int | None, PaymentMethod]], recent_counts: dict[int, int]
) -> InvoiceResult:
    """Settle an invoice this worker holds the lease on."""
    try:
        early, resume_after = reconcile_claimed(ctx)
        if early is not None:
            return early
        if ctx.scheduled and ctx.invoice.due_on > timezone.localdate(ctx.as_of):
            with transaction.atomic():
                invoice = _fence(ctx)
                invoice.save(update_fields=[*_release(invoice), "updated_at"])
            return _result(ctx, Outcome.NOT_DUE)
        plan = build_plan(invoice=ctx.invoice, order=order, as_of=ctx.as_of, recent_counts=recent_counts)
        if resume_after:
            plan = [step for step in plan if (step.position or 0) > resume_after]
        skips: list[PlanStep] = []
        attempts = skipped = 0
        for step in plan:
            if step.skip_reason:
                skips.append(step)
                skipped += 1
                continue
            attempt = _start_attempt(ctx, step, skips)
            if attempt is None:  # removed or blocked since the claim; recorded as a skip
                skipped += 1
                continue
            attempts += 1
            status = _record(ctx, attempt, _call_gateway(attempt))
            if status == Status.SUCCEEDED:
                return _paid_result(ctx, attempt, attempts=attempts, skipped=skipped)
            if status != Status.FAILED:
                return _stopped_result(ctx, status, attempts=attempts, skipped=skipped)
        if not order and not resume_after:
            skips.append(
                PlanStep(method=None, position=None, skip_reason=PaymentAttempt.SkipReason.NO_METHODS)
            )
            skipped += 1
        outcome = _all_failed(ctx, skips)
        if outcome == Outcome.DECLINED:
            message = _("Every payment method we tried was declined.")
        elif not order:
            message = _("There is no payment method in the charge order.")
        else:
            message = _("Every payment method failed.")
        return _result(ctx, outcome, attempts=attempts, skipped=skipped, message=message)
    except LeaseLost:
        logger.warning("Lease on invoice %s was lost; another worker took over.", ctx.invoice.number)
        return _result(ctx, Outcome.LEASE_LOST)
