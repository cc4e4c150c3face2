"""The settlement's emails to the customer: each function describes one, and the settlement queues
them together in the transaction that records the outcomes.

The context holds facts, not sentences: each recipient's words, money format and dates are made
when the email is rendered in their language, by its templates (templates/notifications/, whose
``position|position_label`` and ``decline_code|decline_words`` come from payments, and
``skip_reason|skip_reason_words`` from invoices) and notifications.rendering.
"""

from django.conf import settings
from django.utils import timezone

from invoices.models import Invoice, PaymentAttempt
from notifications.models import SentEmail
from notifications.services import Notification


def _invoice_context(invoice: Invoice) -> dict:
    return {
        "invoice_number": invoice.number,
        "invoice_id": invoice.pk,
        "amount_minor": invoice.amount_minor,
        "currency": invoice.currency,
    }


def _failure(attempt: PaymentAttempt) -> dict:
    return {
        "method": attempt.method.label if attempt.method else "",
        "position": attempt.position,
        "decline_code": attempt.decline_code,
    }


def backup_charged(
    *, invoice: Invoice, attempt: PaymentAttempt, failed: list[PaymentAttempt]
) -> Notification:
    return Notification(
        account=invoice.account,
        kind=SentEmail.Kind.BACKUP_CHARGED,
        event_key=f"backup_charged:{invoice.pk}:{attempt.pk}",
        context={
            **_invoice_context(invoice),
            "charged": {"method": attempt.method.label, "position": attempt.position},
            "failures": [_failure(a) for a in failed],
        },
    )


def all_failed(*, invoice: Invoice, failed: list[PaymentAttempt], skipped) -> Notification:
    return Notification(
        account=invoice.account,
        kind=SentEmail.Kind.ALL_FAILED,
        event_key=f"all_failed:{invoice.pk}:{invoice.retry_round}",
        context={
            **_invoice_context(invoice),
            "failures": [_failure(a) for a in failed],
            "skipped": [
                {
                    "method": s.method.label if s.method else "",
                    "position": s.position,
                    "skip_reason": s.skip_reason,
                }
                for s in skipped
            ],
            # To the second: the stored context, shown in admin, holds no long runs of digits.
            "next_attempt_at": invoice.next_attempt_at.replace(microsecond=0).isoformat()
            if invoice.next_attempt_at
            else "",
            # The scheduled tries left, the last of which marks the invoice uncollectible.
            "attempts_left": max(0, len(settings.BILLING_RETRY_DAYS) - invoice.retry_round + 1),
        },
    )


def account_suspended(*, invoice: Invoice) -> Notification:
    return Notification(
        account=invoice.account,
        kind=SentEmail.Kind.ACCOUNT_SUSPENDED,
        event_key=f"account_suspended:{invoice.account_id}:{invoice.pk}",
        context=_invoice_context(invoice),
    )


def authentication_required(*, invoice: Invoice, attempt: PaymentAttempt) -> Notification:
    """The customer's bank asks them to confirm a charge themselves (3-D Secure): the link opens the
    console's page that does it. Once per attempt, whichever way its answer came in."""
    return Notification(
        account=invoice.account,
        kind=SentEmail.Kind.AUTHENTICATION_REQUIRED,
        event_key=f"authentication_required:{attempt.pk}",
        context={
            **_invoice_context(invoice),
            "method": attempt.method.label if attempt.method else "",
            "position": attempt.position,
        },
    )


def receipt(*, invoice: Invoice, attempt: PaymentAttempt) -> Notification:
    """The receipt for the payment ``attempt`` made, with the invoice's PDF attached when it is
    sent (see ``invoices.documents.receipt_attachment``): one per paid attempt, however many runs
    or retries record it. Due at once, but sent by send_notifications rather than on commit: a
    settlement step must not wait while a PDF is typeset."""
    return Notification(
        account=invoice.account,
        kind=SentEmail.Kind.RECEIPT,
        event_key=f"receipt:{invoice.pk}:{attempt.pk}",
        deliver_after=invoice.paid_at or timezone.now(),
        context={
            **_invoice_context(invoice),
            "method": attempt.method.label if attempt.method else "",
            "paid_at": invoice.paid_at.replace(microsecond=0).isoformat() if invoice.paid_at else "",
        },
    )
