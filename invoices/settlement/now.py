"""Settling one invoice on request: a member's "Pay now", support's "Retry now"."""

import logging

from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from accounts.models import AuditEvent
from accounts.services import audit_record
from invoices.models import Invoice, PaymentAttempt
from payments.models import PaymentMethod

from .claim import claim_one, new_lease
from .eligibility import skip_sentence
from .engine import Engine, items_prepare
from .keeper import LeaseKeeper
from .outcomes import InvoiceResult, Outcome
from .plan import charge_orders

logger = logging.getLogger("invoices.settlement")


def _settle_now(
    *, invoice: Invoice, actor, trigger: str, method: PaymentMethod | None, request
) -> InvoiceResult:
    invoice = Invoice.objects.select_related("account").get(pk=invoice.pk)
    if not invoice.is_collectable:
        return InvoiceResult(
            invoice_id=invoice.pk,
            number=invoice.number,
            outcome=Outcome.NOT_COLLECTABLE,
            message=_("Invoice %(number)s is %(status)s; there is nothing to pay.")
            % {"number": invoice.number, "status": invoice.get_status_display().lower()},
        )
    if trigger == PaymentAttempt.Trigger.STAFF_RETRY and (
        invoice.status == Invoice.Status.OPEN and invoice.due_on > timezone.localdate()
    ):
        # Support does not charge a customer early; they may pay early themselves, with Pay now.
        return InvoiceResult(
            invoice_id=invoice.pk,
            number=invoice.number,
            outcome=Outcome.NOT_DUE,
            message=_(
                "Invoice %(number)s is not due until %(date)s; the scheduled run will charge it then. "
                "Nothing was changed."
            )
            % {"number": invoice.number, "date": date_format(invoice.due_on, "DATE_FORMAT")},
        )
    if method is not None and method.account_id != invoice.account_id:
        raise ValueError("The chosen method belongs to another account.")
    lease = new_lease(owner=f"{trigger}:{actor.get_username() if actor else 'system'}")
    claimed = claim_one(invoice_id=invoice.pk, lease=lease)
    if claimed is None:
        return InvoiceResult(
            invoice_id=invoice.pk,
            number=invoice.number,
            outcome=Outcome.BUSY,
            message=_("Invoice %(number)s is being processed right now; try again in a minute.")
            % {"number": invoice.number},
        )
    with transaction.atomic():
        audit_record(
            account=claimed.account,
            action=AuditEvent.Action.PAY_NOW
            if trigger == PaymentAttempt.Trigger.PAY_NOW
            else AuditEvent.Action.INVOICE_RETRIED,
            actor=actor,
            obj=claimed,
            after={"method": method.pk if method else None},
            request=request,
        )
    order = None
    if method is not None:
        full = charge_orders(account_ids=[claimed.account_id]).get(claimed.account_id, [])
        order = [(next((p for p, m in full if m.pk == method.pk), None), method)]
    now = timezone.now()
    before = claimed.attempts.aggregate(n=Max("sequence"))["n"] or 0
    results = []
    try:
        with LeaseKeeper() as keeper:
            keeper.hold([claimed], lease.token)
            engine = Engine(
                as_of=now, trigger=trigger, actor=actor, on_result=results.append, lease_ok=keeper.fresh
            )
            engine.settle(items_prepare([claimed], lease=lease, as_of=now, order=order, resume=False))
    except Exception:
        logger.exception("Settling invoice %s on request failed", claimed.number)
        results = []
    if results and results[0].outcome == Outcome.DECLINED and not results[0].attempts:
        return _not_charged(claimed, results[0], after=before)
    if results and results[0].outcome != Outcome.ERROR:
        return results[0]
    # The lease is kept until it expires: whatever is unresolved is reconciled by the next run.
    return InvoiceResult(
        invoice_id=claimed.pk,
        number=claimed.number,
        outcome=Outcome.ERROR,
        message=_("Something went wrong; the payment will be checked by the next settlement run."),
    )


def _not_charged(invoice: Invoice, result: InvoiceResult, *, after: int) -> InvoiceResult:
    """Nothing was charged: every method was skipped. Said as such, with each method's reason,
    never as a decline."""
    skips = invoice.attempts.filter(sequence__gt=after, status=PaymentAttempt.Status.SKIPPED).select_related(
        "method"
    )
    reasons = " ".join(
        skip_sentence(skip.method, skip.skip_reason, currency=invoice.currency)
        for skip in skips.order_by("sequence")
    )
    result.outcome = Outcome.NOT_CHARGED
    result.message = _("Nothing was charged: %(reasons)s") % {"reasons": reasons}
    return result


def invoice_pay_now(
    *, invoice: Invoice, actor, method: PaymentMethod | None = None, request=None
) -> InvoiceResult:
    """A member pays an invoice now, down the charge order or with one chosen method."""
    return _settle_now(
        invoice=invoice, actor=actor, trigger=PaymentAttempt.Trigger.PAY_NOW, method=method, request=request
    )


def invoice_retry_now(*, invoice: Invoice, actor, request=None) -> InvoiceResult:
    """Support retries an invoice now, down the charge order. An open invoice whose due date has
    not come is left to the schedule: a customer is not charged early by support (they may pay
    early themselves, with Pay now)."""
    return _settle_now(
        invoice=invoice, actor=actor, trigger=PaymentAttempt.Trigger.STAFF_RETRY, method=None, request=request
    )
