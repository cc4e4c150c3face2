import dataclasses
import enum


class Outcome(enum.StrEnum):
    PAID = "paid"
    PAST_DUE = "past_due"  # every method failed; retried on the schedule
    UNCOLLECTIBLE = "uncollectible"  # every method failed in the last round
    DECLINED = "declined"  # Pay now / Retry now failed; the schedule is unchanged
    PENDING = "pending"  # a bank debit is clearing; nothing else is charged until it resolves
    UNKNOWN = "unknown"  # the gateway did not answer; resolved by the next run
    BUSY = "busy"  # another worker holds the invoice
    NOT_COLLECTABLE = "not_collectable"  # already paid, void or written off
    NOT_DUE = "not_due"  # only reconciled; not due yet
    LEASE_LOST = "lease_lost"  # this worker stalled past its lease; another took over
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
