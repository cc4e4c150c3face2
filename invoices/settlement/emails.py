"""The settlement's emails to the customer, queued in the transaction that records the outcome."""

from django.utils.translation import gettext as _

from billing_console.money import format_money
from invoices.models import Invoice, PaymentAttempt
from notifications.models import SentEmail
from notifications.services import notification_queue

from .plan import position_label


def _invoice_context(invoice: Invoice) -> dict:
    return {
        "invoice_number": invoice.number,
        "invoice_id": invoice.pk,
        "amount": format_money(invoice.amount_minor, invoice.currency),
        "amount_minor": invoice.amount_minor,
        "currency": invoice.currency,
    }


def _failure(attempt: PaymentAttempt) -> dict:
    return {
        "method": attempt.method.label if attempt.method else "",
        "position": position_label(attempt.position),
        "decline_code": attempt.decline_code,
        "reason": attempt.decline_code.replace("_", " "),
    }


def backup_charged(*, invoice: Invoice, attempt: PaymentAttempt, failed: list[PaymentAttempt]) -> None:
    notification_queue(
        account=invoice.account,
        kind=SentEmail.Kind.BACKUP_CHARGED,
        event_key=f"backup_charged:{invoice.pk}:{attempt.pk}",
        context={
            **_invoice_context(invoice),
            "charged_method": attempt.method.label,
            "charged_position": position_label(attempt.position),
            "failures": [_failure(a) for a in failed],
        },
    )


def all_failed(*, invoice: Invoice, failed: list[PaymentAttempt], skipped) -> None:
    notification_queue(
        account=invoice.account,
        kind=SentEmail.Kind.ALL_FAILED,
        event_key=f"all_failed:{invoice.pk}:{invoice.retry_round}",
        context={
            **_invoice_context(invoice),
            "failures": [_failure(a) for a in failed],
            "skipped": [
                {"method": s.method.label if s.method else "", "reason": s.skip_reason_label} for s in skipped
            ],
            "next_attempt": invoice.next_attempt_at.date().isoformat() if invoice.next_attempt_at else "",
            "fix_url_path": "/payment-methods/",
        },
    )


def account_suspended(*, invoice: Invoice) -> None:
    notification_queue(
        account=invoice.account,
        kind=SentEmail.Kind.ACCOUNT_SUSPENDED,
        event_key=f"account_suspended:{invoice.account_id}:{invoice.pk}",
        context={
            **_invoice_context(invoice),
            "reason": _("invoice %(n)s could not be collected") % {"n": invoice.number},
        },
    )
