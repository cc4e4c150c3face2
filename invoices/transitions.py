"""The one state machine of invoices and their payment attempts.

Every change of an invoice's status, of what paid it, and of an attempt's outcome is made here and
nowhere else: the settlement engine, Pay now and Retry now, support's Void and Mark uncollectible,
gateway webhooks and the demo seeding all call these functions. Each takes the objects and a small
``Context`` (trigger, actor, as-of, retry schedule), changes the objects in memory, and returns a
``Change`` saying what the caller must write (fields, audit events, the account's new standing).
The caller writes it in its own transaction; no function here touches the database or a gateway.

Attempts::

    started ─┬─> succeeded
             ├─> failed            (a definitive decline: code and hard/soft class)
             ├─> pending ──> succeeded | failed | unknown   (a bank debit clearing)
             ├─> unknown ──> succeeded | failed | pending | requires_action | unknown | canceled
             └─> requires_action ──> succeeded | failed | canceled
    skipped                        (written as such: a method passed over, with its reason)

Invoices::

    open ─────┬─> paid
    past_due ─┼─> past_due        (every method failed; the next round on the retry schedule)
              ├─> uncollectible   (every method failed in the last round)
              └─> void            (support)
    open | past_due ─> uncollectible   (support writes it off)

An account follows its invoices: suspended when one becomes uncollectible, past due when one goes
past due, active again after a payment once nothing is left past due.
"""

import dataclasses
import datetime

from django.conf import settings
from django.utils import timezone

from accounts.models import Account, AuditEvent
from accounts.services import audit_event
from payments import declines
from payments.gateways.base import ChargeResult, ChargeStatus
from payments.models import PaymentMethod

from .models import Invoice, PaymentAttempt

Status = PaymentAttempt.Status
SETTLEMENT_ACTOR = "settlement"

ATTEMPT_TRANSITIONS: dict[str, frozenset[str]] = {
    Status.STARTED: frozenset(
        {Status.SUCCEEDED, Status.FAILED, Status.PENDING, Status.UNKNOWN, Status.REQUIRES_ACTION}
    ),
    Status.UNKNOWN: frozenset(
        {
            Status.SUCCEEDED,
            Status.FAILED,
            Status.PENDING,
            Status.UNKNOWN,
            Status.REQUIRES_ACTION,
            Status.CANCELED,
        }
    ),
    # Unknown: the gateway lost track of a debit it had reported clearing, or did not answer.
    Status.PENDING: frozenset({Status.SUCCEEDED, Status.FAILED, Status.PENDING, Status.UNKNOWN}),
    Status.REQUIRES_ACTION: frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELED}),
    Status.SUCCEEDED: frozenset(),
    Status.FAILED: frozenset(),
    Status.SKIPPED: frozenset(),
    Status.CANCELED: frozenset(),
}

INVOICE_TRANSITIONS: dict[str, frozenset[str]] = {
    Invoice.Status.OPEN: frozenset(
        {Invoice.Status.PAID, Invoice.Status.PAST_DUE, Invoice.Status.UNCOLLECTIBLE, Invoice.Status.VOID}
    ),
    Invoice.Status.PAST_DUE: frozenset(
        {Invoice.Status.PAID, Invoice.Status.PAST_DUE, Invoice.Status.UNCOLLECTIBLE, Invoice.Status.VOID}
    ),
    Invoice.Status.PAID: frozenset(),
    Invoice.Status.UNCOLLECTIBLE: frozenset(),
    Invoice.Status.VOID: frozenset(),
}

# What the gateway's answer makes of an attempt.
_FROM_GATEWAY = {
    ChargeStatus.SUCCEEDED: Status.SUCCEEDED,
    ChargeStatus.FAILED: Status.FAILED,
    ChargeStatus.PENDING: Status.PENDING,
    ChargeStatus.REQUIRES_ACTION: Status.REQUIRES_ACTION,
}

ATTEMPT_OUTCOME_FIELDS = [
    "status",
    "completed_at",
    "decline_code",
    "decline_class",
    "message",
    "gateway_reference",
]
INVOICE_STATE_FIELDS = [
    "status",
    "paid_at",
    "paid_by_attempt",
    "paid_by_method",
    "paid_by_backup",
    "paid_by_position",
    "next_attempt_at",
    "first_failed_at",
    "retry_round",
    "voided_at",
]


class TransitionRefused(Exception):
    """A transition the state machine does not allow (a bug in the caller, or a race it lost)."""


@dataclasses.dataclass(frozen=True)
class Context:
    """Who or what moves the invoice, and when."""

    now: datetime.datetime
    as_of: datetime.datetime | None = None  # a scheduled run's as-of (defaults to now)
    trigger: str = PaymentAttempt.Trigger.SCHEDULE
    actor: object = None  # the user, for Pay now, Retry now and support's actions
    actor_label: str = ""
    retry_days: tuple[int, ...] | None = None  # defaults to BILLING_RETRY_DAYS
    request: object = None  # for the audit event's address and browser

    @property
    def when(self) -> datetime.datetime:
        return self.as_of or self.now

    @property
    def scheduled(self) -> bool:
        return self.trigger == PaymentAttempt.Trigger.SCHEDULE

    @property
    def schedule(self) -> tuple[int, ...]:
        return tuple(settings.BILLING_RETRY_DAYS if self.retry_days is None else self.retry_days)

    @property
    def label(self) -> str:
        if self.actor_label:
            return self.actor_label
        if self.actor is None:
            return SETTLEMENT_ACTOR
        return ("staff: " if self.actor.is_staff else "") + self.actor.get_username()


class AccountStanding:
    """What an invoice's transition means for its account."""

    PAID = "paid"  # may restore the account, once nothing is left past due
    PAST_DUE = "past_due"
    UNCOLLECTIBLE = "uncollectible"


@dataclasses.dataclass
class Change:
    """What the caller writes for one transition, in its own transaction."""

    invoice_fields: list[str] = dataclasses.field(default_factory=list)
    audits: list[AuditEvent] = dataclasses.field(default_factory=list)
    standing: str = ""  # an AccountStanding, or "" when the account is not concerned


# Attempts ----------------------------------------------------------------------------------------


def attempt_start(
    *,
    invoice: Invoice,
    sequence: int,
    method: PaymentMethod,
    position: int | None,
    ctx: Context,
    run=None,
    idempotency_key: str = "",
) -> PaymentAttempt:
    """A new charge attempt, ``started``, with its idempotency key (by default the deterministic
    one of its invoice and sequence): written and committed before the gateway is called."""
    return PaymentAttempt(
        invoice=invoice,
        sequence=sequence,
        method=method,
        position=position,
        retry_round=invoice.retry_round,
        amount_minor=invoice.amount_minor,
        currency=invoice.currency,
        status=Status.STARTED,
        idempotency_key=idempotency_key or attempt_key(invoice=invoice, sequence=sequence),
        trigger=ctx.trigger,
        initiated_by=ctx.actor if ctx.actor is not None and ctx.actor.is_authenticated else None,
        run=run,
    )


def attempt_key(*, invoice: Invoice, sequence: int) -> str:
    """The idempotency key of an invoice's n-th attempt: the same on every retry of that attempt."""
    return f"settle-{invoice.pk}-{sequence}"


def attempt_skip(
    *,
    invoice: Invoice,
    sequence: int,
    method: PaymentMethod | None,
    position: int | None,
    reason: str,
    ctx: Context,
    run=None,
) -> PaymentAttempt:
    """A method passed over, with its reason (or no method at all): recorded, never charged."""
    return PaymentAttempt(
        invoice=invoice,
        sequence=sequence,
        method=method,
        position=position,
        retry_round=invoice.retry_round,
        amount_minor=invoice.amount_minor,
        currency=invoice.currency,
        status=Status.SKIPPED,
        skip_reason=reason,
        completed_at=ctx.now,
        trigger=ctx.trigger,
        initiated_by=ctx.actor if ctx.actor is not None and ctx.actor.is_authenticated else None,
        run=run,
    )


def attempt_record(attempt: PaymentAttempt, result: ChargeResult | None, *, now: datetime.datetime) -> str:
    """Take in the gateway's answer for ``attempt`` (None: no answer, the outcome is unknown).

    Returns the attempt's new status. Raises TransitionRefused if the attempt cannot move there
    (it was resolved already: an answer that comes late changes nothing)."""
    if result is None:
        _attempt_move(attempt, Status.UNKNOWN)
        attempt.message = "The gateway did not answer in time."
        return attempt.status
    status = _FROM_GATEWAY[ChargeStatus(result.status)]
    _attempt_move(attempt, status)
    if result.reference:
        attempt.gateway_reference = result.reference
    if status in (Status.SUCCEEDED, Status.FAILED):
        attempt.completed_at = now
    if status == Status.FAILED:
        attempt.decline_code = result.decline_code
        attempt.decline_class = declines.decline_class(result.decline_code)
        attempt.message = result.message[:300]
    elif status == Status.REQUIRES_ACTION:
        attempt.message = (result.message or "The customer must authenticate this payment.")[:300]
    else:
        attempt.message = ""
    return attempt.status


def attempt_cancel(attempt: PaymentAttempt, *, now: datetime.datetime, message: str) -> None:
    """Close an attempt the gateway never charged (or whose authentication was abandoned)."""
    _attempt_move(attempt, Status.CANCELED)
    attempt.completed_at = now
    attempt.message = message[:300]


def attempt_blocks_method(attempt: PaymentAttempt) -> bool:
    """A hard decline: the method is not tried again until the customer updates it."""
    return attempt.status == Status.FAILED and attempt.decline_class == declines.HARD


def target_status(result: ChargeResult | None) -> str:
    """The attempt status a gateway's answer means (None: no answer)."""
    return Status.UNKNOWN if result is None else _FROM_GATEWAY[ChargeStatus(result.status)]


def attempt_may_record(attempt: PaymentAttempt, result: ChargeResult | None) -> bool:
    return target_status(result) in ATTEMPT_TRANSITIONS[attempt.status]


def _attempt_move(attempt: PaymentAttempt, status: str) -> None:
    if status not in ATTEMPT_TRANSITIONS[attempt.status]:
        raise TransitionRefused(f"attempt {attempt.idempotency_key}: {attempt.status} → {status}")
    attempt.status = status


# Invoices ----------------------------------------------------------------------------------------


def _invoice_move(invoice: Invoice, status: str) -> str:
    if status not in INVOICE_TRANSITIONS[invoice.status]:
        raise TransitionRefused(f"invoice {invoice.number}: {invoice.status} → {status}")
    before = invoice.status
    invoice.status = status
    return before


def invoice_paid(*, invoice: Invoice, attempt: PaymentAttempt, ctx: Context) -> Change:
    """The attempt succeeded: the invoice is paid, by that attempt and method."""
    if attempt.status != Status.SUCCEEDED:
        raise TransitionRefused(f"invoice {invoice.number}: paid by a {attempt.status} attempt")
    before = _invoice_move(invoice, Invoice.Status.PAID)
    invoice.paid_at = attempt.completed_at or ctx.now
    invoice.paid_by_attempt = attempt
    invoice.paid_by_method_id = attempt.method_id
    invoice.paid_by_backup = (attempt.position or 1) > 1
    invoice.paid_by_position = attempt.position
    invoice.next_attempt_at = None
    return Change(
        invoice_fields=[
            "status",
            "paid_at",
            "paid_by_attempt",
            "paid_by_method",
            "paid_by_backup",
            "paid_by_position",
            "next_attempt_at",
        ],
        audits=[
            audit_event(
                account=invoice.account,
                action=AuditEvent.Action.INVOICE_PAID,
                actor=ctx.actor,
                actor_label=ctx.label,
                obj=invoice,
                before={"status": before},
                after={"status": invoice.status, "method": attempt.method_id, "position": attempt.position},
            )
        ],
        standing=AccountStanding.PAID if invoice.account.status != Account.Status.ACTIVE else "",
    )


def invoice_all_failed(*, invoice: Invoice, ctx: Context) -> Change:
    """Every method failed or was skipped in a scheduled run: the next round on the retry
    schedule, or uncollectible after the last one. (Pay now and Retry now leave the schedule be:
    call nothing.)"""
    schedule = ctx.schedule
    if invoice.retry_round >= len(schedule):
        before = _invoice_move(invoice, Invoice.Status.UNCOLLECTIBLE)
        invoice.next_attempt_at = None
        action, standing = AuditEvent.Action.INVOICE_UNCOLLECTIBLE, AccountStanding.UNCOLLECTIBLE
    else:
        before = _invoice_move(invoice, Invoice.Status.PAST_DUE)
        invoice.first_failed_at = invoice.first_failed_at or ctx.when
        delay = datetime.timedelta(days=schedule[invoice.retry_round])
        invoice.next_attempt_at = later_than(ctx, invoice.first_failed_at + delay)
        invoice.retry_round += 1
        action, standing = AuditEvent.Action.INVOICE_PAST_DUE, AccountStanding.PAST_DUE
    return Change(
        invoice_fields=["status", "next_attempt_at", "first_failed_at", "retry_round"],
        audits=[
            audit_event(
                account=invoice.account,
                action=action,
                actor_label=SETTLEMENT_ACTOR,
                obj=invoice,
                before={"status": before},
                after={
                    "status": invoice.status,
                    "retry_round": invoice.retry_round,
                    "at": ctx.now.isoformat(),
                },
            )
        ],
        standing=standing,
    )


def invoice_close(*, invoice: Invoice, status: str, ctx: Context) -> Change:
    """Support voids an invoice or writes it off."""
    if status not in (Invoice.Status.VOID, Invoice.Status.UNCOLLECTIBLE):
        raise TransitionRefused(f"invoice {invoice.number}: support cannot make it {status}")
    before = _invoice_move(invoice, status)
    invoice.next_attempt_at = None
    fields = ["status", "next_attempt_at"]
    if status == Invoice.Status.VOID:
        invoice.voided_at = ctx.now
        fields.append("voided_at")
    action = (
        AuditEvent.Action.INVOICE_VOIDED
        if status == Invoice.Status.VOID
        else AuditEvent.Action.INVOICE_UNCOLLECTIBLE
    )
    return Change(
        invoice_fields=fields,
        audits=[
            audit_event(
                account=invoice.account,
                action=action,
                actor=ctx.actor,
                actor_label=ctx.actor_label,
                obj=invoice,
                before={"status": before},
                after={"status": status},
                request=ctx.request,
            )
        ],
    )


def invoice_due_now(*, invoice: Invoice, ctx: Context) -> Change:
    """Make a collectable invoice eligible at the next run (its charge order changed, or an
    outcome it waited for came in)."""
    if not invoice.is_collectable:
        return Change()
    invoice.next_attempt_at = ctx.now
    return Change(invoice_fields=["next_attempt_at"])


def invoice_wait(*, invoice: Invoice, ctx: Context) -> Change:
    """An outcome is awaited (a debit clearing, a gateway that did not answer): the next run
    resolves it first. Always after this run's as-of, so one run never picks an invoice twice."""
    invoice.next_attempt_at = later_than(ctx, ctx.now)
    return Change(invoice_fields=["next_attempt_at"])


def later_than(ctx: Context, when: datetime.datetime) -> datetime.datetime:
    return max(when, ctx.when + datetime.timedelta(microseconds=1))


# Accounts ----------------------------------------------------------------------------------------


def account_status_after(*, account: Account, standings: set[str], has_past_due) -> str | None:
    """The account's new status after its invoices moved (``standings``), or None to leave it.
    ``has_past_due()`` tells whether any invoice of the account is still past due."""
    if AccountStanding.UNCOLLECTIBLE in standings:
        return Account.Status.SUSPENDED if account.status != Account.Status.SUSPENDED else None
    if AccountStanding.PAST_DUE in standings:
        return Account.Status.PAST_DUE if account.status == Account.Status.ACTIVE else None
    if AccountStanding.PAID in standings and account.status != Account.Status.ACTIVE and not has_past_due():
        return Account.Status.ACTIVE
    return None


def context_now(**fields) -> Context:
    return Context(now=timezone.now(), **fields)
