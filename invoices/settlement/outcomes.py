"""What settling one invoice came to, with the words a person reads about it."""

import dataclasses
import enum

from django.utils.translation import gettext as _


class Outcome(enum.StrEnum):
    PAID = "paid"
    PAST_DUE = "past_due"  # every method failed; retried on the schedule
    UNCOLLECTIBLE = "uncollectible"  # every method failed in the last round
    DECLINED = "declined"  # Pay now / Retry now failed; the schedule is unchanged
    NOT_CHARGED = "not_charged"  # Pay now / Retry now: every method was skipped, none was charged
    PENDING = "pending"  # a bank debit is clearing; nothing else is charged until it resolves
    UNKNOWN = "unknown"  # the gateway did not answer; resolved by the next run
    BUSY = "busy"  # another worker holds the invoice
    NOT_COLLECTABLE = "not_collectable"  # already paid, void or written off
    NOT_DUE = "not_due"  # only reconciled; not due yet
    LEASE_LOST = "lease_lost"  # this worker stalled past its lease; another took over
    RESOLVED_ELSEWHERE = "resolved_elsewhere"  # a webhook settled the attempt while its call was out
    ERROR = "error"


@dataclasses.dataclass
class InvoiceResult:
    invoice_id: int
    number: str
    outcome: Outcome
    paid_by_backup: bool = False
    paid_position: int | None = None
    attempts: int = 0
    skipped: int = 0
    message: str = ""


def paid_result(
    *, invoice_id: int, number: str, attempt, replay: bool, attempts: int, skipped: int, label: str
):
    return InvoiceResult(
        invoice_id=invoice_id,
        number=number,
        outcome=Outcome.PAID,
        paid_by_backup=(attempt.position or 1) > 1,
        paid_position=attempt.position,
        attempts=1 if replay else attempts,
        skipped=0 if replay else skipped,
        message=_("Paid with %(method)s (%(position)s).")
        % {"method": attempt.method.label, "position": label},
    )


def stopped_message(outcome: Outcome) -> str:
    """Why the cascade stopped for an invoice whose outcome is awaited."""
    if outcome == Outcome.PENDING:
        return _("A bank debit is still clearing.")
    return _("The payment gateway did not answer; we will check again.")


def final_message(outcome: Outcome, *, had_methods: bool) -> str:
    if outcome == Outcome.DECLINED:
        return _("Every payment method we tried was declined.")
    if not had_methods:
        return _("There is no payment method in the charge order.")
    return _("Every payment method failed.")
