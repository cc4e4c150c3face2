"""One step of the cascade: one transaction that moves many claimed invoices as far as they go
without a gateway call.

In a step, for every invoice that can move: the gateway's replies that came back are recorded, the
methods that cannot pay are skipped with their reasons, the next attempts are started (committed
before any call), and final outcomes are written — all with bulk reads and writes, and every write
fenced on the invoice's lease so a worker that stalled past its lease changes nothing. Each change
of status is decided by ``invoices.transitions``; this module only gathers and writes them.
"""

import dataclasses
import datetime
import logging
from collections import defaultdict
from collections.abc import Callable

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import AuditEvent
from core.bulk import insert_rows, update_rows
from invoices import transitions
from invoices.models import Invoice, PaymentAttempt, SettlementRun
from invoices.transitions import AccountStanding, Context
from notifications.services import notification_queue_many
from payments.models import PaymentMethod
from payments.ranks import position_label

from . import emails
from .items import NO_REPLY, Item, LeaseExpired, NotCharged
from .outcomes import InvoiceResult, Outcome, final_message, paid_result, stopped_message
from .plan import PlanStep, recent_attempt_counts
from .standing import accounts_follow

logger = logging.getLogger("invoices.settlement")
Status = PaymentAttempt.Status
SkipReason = PaymentAttempt.SkipReason
LEASE_FIELDS = ["lease_token", "lease_owner", "lease_expires_at", "updated_at"]
INVOICE_FIELDS = [*transitions.INVOICE_STATE_FIELDS, *LEASE_FIELDS]


@dataclasses.dataclass
class Step:
    """What one transaction writes, gathered while the items in it move."""

    ctx: Context
    busy: set[int]  # methods with a call in flight or started in this step
    attempt_updates: list[PaymentAttempt] = dataclasses.field(default_factory=list)
    blocks: list[PaymentAttempt] = dataclasses.field(default_factory=list)
    new_attempts: list[PaymentAttempt] = dataclasses.field(default_factory=list)
    invoices: dict[int, Invoice] = dataclasses.field(default_factory=dict)  # to write back
    recent_counts: dict[int, int] = dataclasses.field(default_factory=dict)  # attempts per method, up to now
    audits: list[AuditEvent] = dataclasses.field(default_factory=list)
    notifications: list = dataclasses.field(default_factory=list)
    standings: dict[int, list[tuple[str, Invoice]]] = dataclasses.field(
        default_factory=lambda: defaultdict(list)
    )
    methods: dict[int, PaymentMethod] = dataclasses.field(default_factory=dict)
    calls: list[Item] = dataclasses.field(default_factory=list)

    @property
    def now(self) -> datetime.datetime:
        return self.ctx.now

    def take(self, item: Item, change: transitions.Change) -> None:
        self.invoices[item.invoice.pk] = item.invoice
        self.audits += change.audits
        if change.standing:
            self.standings[item.invoice.account_id].append((change.standing, item.invoice))


class Cascade:
    """The per-step work of an engine: who it acts for (trigger, actor, run) and as of when."""

    def __init__(
        self,
        *,
        as_of: datetime.datetime,
        run: SettlementRun | None,
        trigger: str,
        actor,
        send_later: Callable[[list[int]], None] | None = None,
    ):
        self.as_of, self.run, self.trigger, self.actor = as_of, run, trigger, actor
        # Where the emails a step queues go once it commits (a run's outbox sender); without it,
        # they are sent as the step commits.
        self.send_later = send_later
        self.today = timezone.localdate(as_of)
        self.declined_in_run: set[int] = set()  # methods declined in this run, for any invoice

    @property
    def scheduled(self) -> bool:
        return self.trigger == PaymentAttempt.Trigger.SCHEDULE

    def context(self) -> Context:
        return Context(now=timezone.now(), as_of=self.as_of, trigger=self.trigger, actor=self.actor)

    def step(self, items: list[Item], busy: set[int]) -> list[Item]:
        """Move ``items`` in one transaction; returns those with a call to make."""
        step = Step(ctx=self.context(), busy=set(busy))
        with transaction.atomic():
            held = self._fence(items)
            resolved = self._resolved_meanwhile(held)
            # Replies first: a hard decline blocks its method before anything else is started.
            for item in held:
                if item.reply is not NO_REPLY:
                    if item.attempt.pk in resolved:
                        self._drop(item, step)
                    else:
                        self._record(item, step)
            if step.attempt_updates:
                update_rows(step.attempt_updates, transitions.ATTEMPT_OUTCOME_FIELDS)
            # Fresh rows of the methods the invoices still going may start: one removed or blocked
            # since the claim is skipped, not charged.
            wanted = {
                s.method.pk for item in held if item.result is None for s in item.plan if not s.skip_reason
            }
            if step.blocks:
                # Every method row the step writes or counts on is locked first, in one order: two
                # runs blocking and counting methods of one account never wait on each other. (NO
                # KEY: the foreign-key checks of the rows naming a method, which take a share of
                # its key, do not wait on these locks, so they make no cycle with them either.)
                blocked = {attempt.method_id for attempt in step.blocks}
                locking = PaymentMethod.objects.select_for_update(no_key=True).filter(pk__in=blocked | wanted)
                list(locking.order_by("pk").values_list("pk", flat=True))
                for attempt in step.blocks:
                    PaymentMethod.objects.filter(pk=attempt.method_id, blocked_at__isnull=True).update(
                        blocked_at=step.now, blocked_reason=attempt.decline_code
                    )
            if wanted:
                # Locked, in one order, so concurrent runs count each method's attempts one after
                # another: the card networks' re-attempt cap holds across every run.
                step.methods = {
                    m.pk: m
                    for m in PaymentMethod.objects.select_for_update(no_key=True)
                    .filter(pk__in=wanted)
                    .order_by("pk")
                }
                step.recent_counts = recent_attempt_counts(method_ids=wanted, as_of=self.as_of)
            # Invoices already on their way go first, then new ones.
            for item in sorted(held, key=lambda item: not item.touched):
                if item.result is None:
                    self._advance(item, step)
            self._write(step)
        return step.calls

    def fail(self, item: Item, exc: Exception) -> None:
        """An unexpected error: its lease lapses and a later run retries the invoice; whatever is
        unresolved is reconciled first."""
        item.attempt, item.reply, item.error = None, NO_REPLY, None
        if isinstance(exc, LeaseExpired):
            # Its attempt stays started, for whoever holds the invoice next to resolve.
            logger.warning("Not calling the gateway for invoice %s: %s", item.invoice.number, exc)
            item.result = self._result(item, Outcome.LEASE_LOST)
            return
        logger.error("Settling invoice %s failed", item.invoice.number, exc_info=exc)
        item.result = self._result(item, Outcome.ERROR, message=str(exc)[:200])

    # Reading and recording ------------------------------------------------------------------------

    def _fence(self, items: list[Item]) -> list[Item]:
        """Lock the items' invoices; those whose lease this worker lost end here, unchanged."""
        locked = {
            invoice.pk: invoice
            for invoice in Invoice.objects.select_for_update(of=("self",))
            .select_related("account")
            .filter(pk__in=[item.invoice.pk for item in items])
            .order_by("pk")
        }
        held = []
        for item in items:
            invoice = locked.get(item.invoice.pk)
            if invoice is None or invoice.lease_token != item.lease.token:
                logger.warning("Lease on invoice %s was lost; another worker took over.", item.invoice.number)
                item.attempt, item.reply, item.error = None, NO_REPLY, None
                item.result = self._result(item, Outcome.LEASE_LOST)
                continue
            item.invoice = invoice
            held.append(item)
        return held

    def _resolved_meanwhile(self, held: list[Item]) -> set[int]:
        """Attempts with a reply in that something else resolved while the call was out (a
        webhook, under the same invoice lock): their late replies are dropped."""
        replied = {item.attempt.pk: item.attempt.status for item in held if item.reply is not NO_REPLY}
        if not replied:
            return set()
        now = PaymentAttempt.objects.filter(pk__in=list(replied)).values_list("pk", "status")
        return {pk for pk, status in now if status != replied[pk]}

    def _drop(self, item: Item, step: Step) -> None:
        logger.info(
            "Attempt %s was resolved meanwhile; its late reply is dropped.", item.attempt.idempotency_key
        )
        item.attempt, item.reply = None, NO_REPLY
        self._release(item, step)
        item.result = self._result(item, Outcome.RESOLVED_ELSEWHERE)

    def _record(self, item: Item, step: Step) -> None:
        """Take in the gateway's reply for the item's attempt."""
        attempt, result = item.attempt, item.reply
        item.reply = NO_REPLY
        if isinstance(result, NotCharged):
            # Never charged, and never will be: closed, and the cascade goes on with today's order.
            transitions.attempt_cancel(attempt, now=step.now, message=result.message)
            step.attempt_updates.append(attempt)
            item.attempt = None
            return
        status = transitions.attempt_record(attempt, result, now=step.now)
        if transitions.attempt_blocks_method(attempt):
            step.blocks.append(attempt)
        step.attempt_updates.append(attempt)
        item.attempt = None
        if status == Status.SUCCEEDED:
            self._paid(item, attempt, step)
        elif status in (Status.FAILED, Status.REQUIRES_ACTION):
            # The customer must authenticate: like a decline, the cascade moves on in this run (the
            # customer is asked to confirm it unless a later method pays: see _ask_to_authenticate).
            item.failed.append(attempt)
            if status == Status.FAILED:
                self.declined_in_run.add(attempt.method_id)
            if item.replay:
                item.declined.add(attempt.method_id)
                item.last_declined = attempt.method_id
        else:
            # Pending or unknown: let go, so the next run (any worker) resolves it first.
            step.take(item, transitions.invoice_wait(invoice=item.invoice, ctx=step.ctx))
            self._release(item, step)
            self._ask_to_authenticate(item, step)
            outcome = Outcome.PENDING if status == Status.PENDING else Outcome.UNKNOWN
            counts = {"attempts": 1} if item.replay else {"attempts": item.attempts, "skipped": item.skipped}
            item.result = self._result(item, outcome, message=stopped_message(outcome), **counts)

    # Moving on --------------------------------------------------------------------------------------

    def _advance(self, item: Item, step: Step) -> None:
        """Take the item's next steps: skips, then a call to make, or its final outcome."""
        while True:
            if item.replays:
                attempt = item.replays[0]
                if attempt.method_id in step.busy:
                    return  # waits for the method
                item.replays.pop(0)
                self._make_call(item, attempt, step, replay=True)
                return
            if not item.planned:
                item.planned = True
                if self.scheduled and item.invoice.due_on > self.today:
                    self._release(item, step)  # claimed only to reconcile
                    item.result = self._result(item, Outcome.NOT_DUE)
                    return
                if self.scheduled:
                    item.resume_plan()
            if not item.plan:
                self._all_failed(item, step)
                return
            plan_step = item.plan[0]
            method = plan_step.method
            if not plan_step.skip_reason:
                if plan_step.method.pk in step.busy:
                    return  # waits for the method
                method = step.methods.get(plan_step.method.pk, plan_step.method)
                reason = self._skip_now(method, step)
                if reason:
                    plan_step = dataclasses.replace(plan_step, method=method, skip_reason=reason)
            item.plan.pop(0)
            if plan_step.skip_reason:
                item.skips.append(plan_step)
                item.skipped += 1
                continue
            self._write_skips(item, step)
            attempt = transitions.attempt_start(
                invoice=item.invoice,
                sequence=item.next_sequence,
                method=method,
                position=plan_step.position,
                ctx=step.ctx,
                run=self.run,
            )
            item.next_sequence += 1
            item.attempts += 1
            step.recent_counts[method.pk] = step.recent_counts.get(method.pk, 0) + 1
            step.new_attempts.append(attempt)
            self._make_call(item, attempt, step, replay=False)
            return

    def _skip_now(self, method: PaymentMethod, step: Step) -> str:
        """Why a method the plan would charge is skipped after all, as things stand in this step."""
        if not method.is_active:
            return SkipReason.REMOVED  # removed since the claim
        if method.blocked_at is not None:
            return SkipReason.BLOCKED
        if method.pk in self.declined_in_run:
            # One decline per card and run: forty invoices on a declined card cost one decline.
            return SkipReason.DECLINED_IN_RUN
        if step.recent_counts.get(method.pk, 0) >= settings.BILLING_REATTEMPT_CAP:
            return SkipReason.REATTEMPT_CAP
        return ""

    def _make_call(self, item: Item, attempt: PaymentAttempt, step: Step, *, replay: bool) -> None:
        item.attempt, item.replay, item.touched = attempt, replay, True
        step.busy.add(attempt.method_id)
        step.calls.append(item)

    def _write_skips(self, item: Item, step: Step) -> None:
        for skip in item.skips:
            step.new_attempts.append(
                transitions.attempt_skip(
                    invoice=item.invoice,
                    sequence=item.next_sequence,
                    method=skip.method,
                    position=skip.position,
                    reason=skip.skip_reason,
                    ctx=step.ctx,
                    run=self.run,
                )
            )
            item.next_sequence += 1
        item.skips = []

    def _release(self, item: Item, step: Step) -> None:
        invoice = item.invoice
        invoice.lease_token, invoice.lease_owner, invoice.lease_expires_at = "", "", None
        step.invoices[invoice.pk] = invoice

    # Final outcomes ---------------------------------------------------------------------------------

    def _paid(self, item: Item, attempt: PaymentAttempt, step: Step) -> None:
        step.take(item, transitions.invoice_paid(invoice=item.invoice, attempt=attempt, ctx=step.ctx))
        self._release(item, step)
        step.notifications.append(emails.receipt(invoice=item.invoice, attempt=attempt))
        if item.invoice.paid_by_backup:
            step.notifications.append(
                emails.backup_charged(invoice=item.invoice, attempt=attempt, failed=item.failed)
            )
        item.result = paid_result(
            invoice_id=item.invoice.pk,
            number=item.invoice.number,
            attempt=attempt,
            replay=item.replay,
            attempts=item.attempts,
            skipped=item.skipped,
            label=position_label(attempt.position),
        )

    def _ask_to_authenticate(self, item: Item, step: Step) -> None:
        """The cascade ended unpaid: each charge of it that waits for the customer's bank is
        emailed to the customer, once per attempt, with the link that confirms it on-session. (Paid
        by a later method, the invoice needs none of them, and nobody is asked.)"""
        for attempt in item.failed:
            if attempt.status == Status.REQUIRES_ACTION:
                step.notifications.append(
                    emails.authentication_required(invoice=item.invoice, attempt=attempt)
                )

    def _all_failed(self, item: Item, step: Step) -> None:
        """Every method failed or was skipped. A scheduled run moves the invoice along the retry
        schedule; Pay now and Retry now leave the schedule alone."""
        invoice = item.invoice
        if not item.order and not item.resumed and not item.declined:
            item.skips.append(PlanStep(method=None, position=None, skip_reason=SkipReason.NO_METHODS))
            item.skipped += 1
        skipped = list(item.skips)
        self._write_skips(item, step)
        self._release(item, step)
        self._ask_to_authenticate(item, step)
        if not self.scheduled:
            item.result = self._final_result(item, Outcome.DECLINED)
            return
        change = transitions.invoice_all_failed(invoice=invoice, ctx=step.ctx)
        step.take(item, change)
        if change.standing == AccountStanding.UNCOLLECTIBLE:
            outcome = Outcome.UNCOLLECTIBLE
        else:
            outcome = Outcome.PAST_DUE
            step.notifications.append(emails.all_failed(invoice=invoice, failed=item.failed, skipped=skipped))
        item.result = self._final_result(item, outcome)

    # Writing ----------------------------------------------------------------------------------------

    def _write(self, step: Step) -> None:
        if step.new_attempts:
            insert_rows(step.new_attempts)
        if step.invoices:
            for invoice in step.invoices.values():
                invoice.updated_at = step.now
            update_rows(step.invoices.values(), INVOICE_FIELDS)
        if step.audits:
            insert_rows(step.audits)
        if step.standings:
            accounts_follow(step.standings)
        self._queue_emails(step)

    def _queue_emails(self, step: Step) -> None:
        if self.send_later is None:
            notification_queue_many(step.notifications)
            return
        # Due now, but left to the run's sender: a step never renders or sends an email.
        at_once = {n.event_key for n in step.notifications if n.deliver_after is None}
        queued = notification_queue_many(
            [
                n if n.deliver_after else dataclasses.replace(n, deliver_after=step.now)
                for n in step.notifications
            ]
        )
        ids = [email.pk for email in queued if email.event_key in at_once]
        if ids:
            transaction.on_commit(lambda: self.send_later(ids))

    # Results ----------------------------------------------------------------------------------------

    def _result(self, item: Item, outcome: Outcome, **kwargs) -> InvoiceResult:
        return InvoiceResult(
            invoice_id=item.invoice.pk, number=item.invoice.number, outcome=outcome, **kwargs
        )

    def _final_result(self, item: Item, outcome: Outcome) -> InvoiceResult:
        return self._result(
            item,
            outcome,
            attempts=item.attempts,
            skipped=item.skipped,
            message=final_message(outcome, had_methods=bool(item.order)),
        )
