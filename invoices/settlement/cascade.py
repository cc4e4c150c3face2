"""Settling claimed invoices: resolve what is unresolved, then charge down the charge order.

The rules that keep every invoice charged at most once:
- an attempt row (status ``started``, deterministic idempotency key) commits before the gateway
  is called, and the call happens outside any transaction;
- every write after a call is fenced on the invoice's lease token: a worker that stalled past its
  lease and was replaced changes nothing;
- an attempt whose outcome is unknown is resolved by asking the gateway, or by repeating the
  call with the same key (which the gateway answers without charging twice), never with a new key;
- while any attempt is unresolved nothing else is charged for that invoice.

How it goes fast: an ``Engine`` settles many claimed invoices together. Each *step* is one
transaction for every invoice that can move: it records the replies that came back, starts the
next attempts and writes final outcomes, all with bulk reads and writes. Between steps the
gateway calls run, outside any transaction: one after another, or up to ``concurrency`` at once
on a pool of threads. One payment method is never charged twice at the same time, so a card
declined as lost is blocked before another invoice of the same account tries it.
"""

import copy
import dataclasses
import datetime
import logging
import queue
import threading
from collections import defaultdict
from collections.abc import Callable

from django.conf import settings
from django.db import connection, connections, transaction
from django.db.models import Max
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.models import Account, AuditEvent
from accounts.services import account_set_status, audit_event
from core.bulk import insert_rows, update_rows
from invoices.models import Invoice, PaymentAttempt, SettlementRun
from notifications.services import notification_queue_many
from payments import declines
from payments.gateways import get_gateway
from payments.gateways.base import ChargeResult, ChargeStatus, GatewayUnavailable
from payments.models import PaymentMethod

from . import emails
from .outcomes import InvoiceResult, Outcome
from .plan import PlanStep, build_plan, charge_orders, position_label, recent_attempt_counts

logger = logging.getLogger("invoices.settlement")
Status = PaymentAttempt.Status
SETTLEMENT_ACTOR = "settlement"
NO_REPLY = object()  # an item with no gateway reply waiting to be recorded
INVOICE_FIELDS = [
    "status",
    "paid_at",
    "paid_by_attempt",
    "paid_by_method",
    "paid_by_backup",
    "next_attempt_at",
    "first_failed_at",
    "retry_round",
    "lease_token",
    "lease_owner",
    "lease_expires_at",
    "updated_at",
]
ATTEMPT_FIELDS = ["status", "completed_at", "decline_code", "decline_class", "message", "gateway_reference"]


@dataclasses.dataclass(frozen=True)
class Lease:
    token: str
    owner: str


@dataclasses.dataclass
class Item:
    """One claimed invoice on its way through the cascade."""

    invoice: Invoice
    lease: Lease
    order: list[tuple[int | None, PaymentMethod]]  # the charge order (or the one chosen method)
    plan: list[PlanStep]  # steps not taken yet
    replays: list[PaymentAttempt]  # unresolved attempts still to resolve, oldest first
    next_sequence: int
    planned: bool = False  # replays done and the plan trimmed to what is left
    resume_after: int = 0  # the rank of the last unresolved attempt that turned out declined
    skips: list[PlanStep] = dataclasses.field(default_factory=list)  # taken, not yet written
    failed: list[PaymentAttempt] = dataclasses.field(default_factory=list)  # declined in this cascade
    attempt: PaymentAttempt | None = None  # the call to make, or in flight
    replay: bool = False  # ``attempt`` is an unresolved one being resolved
    reply: object = NO_REPLY  # what the gateway answered: a ChargeResult, or None for no answer
    error: Exception | None = None  # the call raised
    attempts: int = 0
    skipped: int = 0
    touched: bool = False  # a call was made for it in this run
    result: InvoiceResult | None = None

    def wanted_method(self) -> int | None:
        """The method the next call would use (None: no call is next, or the reply is in)."""
        if self.reply is not NO_REPLY or self.error is not None:
            return None
        if self.replays:
            return self.replays[0].method_id
        for step in self.plan:
            if not step.skip_reason and (step.position or 0) > self.resume_after:
                return step.method.pk
        return None

    def snapshot(self) -> "Item":
        return dataclasses.replace(
            self,
            plan=list(self.plan),
            replays=list(self.replays),
            skips=list(self.skips),
            failed=list(self.failed),
            attempt=copy.copy(self.attempt),
        )

    def restore(self, snapshot: "Item") -> None:
        self.__dict__.update(snapshot.__dict__)


def items_prepare(
    invoices: list[Invoice],
    *,
    lease: Lease,
    as_of: datetime.datetime,
    order: list[tuple[int | None, PaymentMethod]] | None = None,
) -> list[Item]:
    """Items for invoices claimed under ``lease``, with what each needs read in a few queries:
    the charge orders (or ``order`` for every invoice), recent charges per method, unresolved
    attempts and the last attempt numbers."""
    if not invoices:
        return []
    ids = [invoice.pk for invoice in invoices]
    orders = None if order is not None else charge_orders(account_ids=[i.account_id for i in invoices])
    method_ids = {m.pk for o in ([order] if order is not None else orders.values()) for _p, m in o}
    counts = recent_attempt_counts(method_ids=method_ids, as_of=as_of)
    unresolved = defaultdict(list)
    for attempt in (
        PaymentAttempt.objects.filter(invoice_id__in=ids, status__in=PaymentAttempt.UNRESOLVED)
        .select_related("method")
        .order_by("invoice_id", "sequence")
    ):
        unresolved[attempt.invoice_id].append(attempt)
    last = dict(
        PaymentAttempt.objects.filter(invoice_id__in=ids)
        .values("invoice_id")
        .annotate(n=Max("sequence"))
        .values_list("invoice_id", "n")
    )
    items = []
    for invoice in invoices:
        own_order = order if order is not None else orders.get(invoice.account_id, [])
        items.append(
            Item(
                invoice=invoice,
                lease=lease,
                order=own_order,
                plan=build_plan(invoice=invoice, order=own_order, as_of=as_of, recent_counts=counts),
                replays=unresolved.get(invoice.pk, []),
                next_sequence=last.get(invoice.pk, 0) + 1,
            )
        )
    return items


def _outside_transactions() -> bool:
    # Tests wrap everything in atomic blocks of their own; those don't count.
    return not any(not getattr(block, "_from_testcase", False) for block in connection.atomic_blocks)


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


def _call(item: Item) -> Item:
    try:
        item.reply = _call_gateway(item.attempt, replay=item.replay)
    except Exception as exc:  # a bug or a broken gateway: this invoice errors, the others go on
        item.error = exc
    return item


class _CallPool:
    """Up to ``size`` gateway calls at once, on threads started as needed; each thread closes its
    database connections when the pool shuts down."""

    def __init__(self, size: int, replies: queue.SimpleQueue):
        self.size, self.replies = size, replies
        self.tasks: queue.SimpleQueue = queue.SimpleQueue()
        self.threads: list[threading.Thread] = []

    def submit(self, item: Item) -> None:
        if len(self.threads) < self.size:
            thread = threading.Thread(target=self._work, name=f"gateway-{len(self.threads)}", daemon=True)
            self.threads.append(thread)
            thread.start()
        self.tasks.put(item)

    def _work(self) -> None:
        try:
            while (item := self.tasks.get()) is not None:
                self.replies.put(_call(item))
        finally:
            connections.close_all()

    def shutdown(self) -> None:
        for _thread in self.threads:
            self.tasks.put(None)
        for thread in self.threads:
            thread.join()


@dataclasses.dataclass
class _Step:
    """What one transaction writes, gathered while the items in it move."""

    now: datetime.datetime
    busy: set[int]  # methods with a call in flight or started in this step
    attempt_updates: list[PaymentAttempt] = dataclasses.field(default_factory=list)
    blocks: list[PaymentAttempt] = dataclasses.field(default_factory=list)
    new_attempts: list[PaymentAttempt] = dataclasses.field(default_factory=list)
    invoices: dict[int, Invoice] = dataclasses.field(default_factory=dict)  # to write back
    heartbeat: list[int] = dataclasses.field(default_factory=list)
    audits: list[AuditEvent] = dataclasses.field(default_factory=list)
    notifications: list = dataclasses.field(default_factory=list)
    account_changes: dict[int, list[tuple[Outcome, Item]]] = dataclasses.field(
        default_factory=lambda: defaultdict(list)
    )
    methods: dict[int, PaymentMethod] = dataclasses.field(default_factory=dict)
    calls: list[Item] = dataclasses.field(default_factory=list)


class Engine:
    def __init__(
        self,
        *,
        as_of: datetime.datetime,
        run: SettlementRun | None = None,
        trigger: str = PaymentAttempt.Trigger.SCHEDULE,
        actor=None,
        concurrency: int = 1,
        stop: threading.Event | None = None,
        on_result: Callable[[InvoiceResult], None] = lambda result: None,
    ):
        self.as_of, self.run, self.trigger, self.actor = as_of, run, trigger, actor
        self.concurrency = max(1, concurrency)
        self.stop = stop or threading.Event()
        self.on_result = on_result
        self.today = timezone.localdate(as_of)

    @property
    def scheduled(self) -> bool:
        return self.trigger == PaymentAttempt.Trigger.SCHEDULE

    @property
    def actor_label(self) -> str:
        if self.actor is None:
            return SETTLEMENT_ACTOR
        return ("staff: " if self.actor.is_staff else "") + self.actor.get_username()

    # The loop ----------------------------------------------------------------------------------

    def settle(
        self,
        items: list[Item] | None = None,
        *,
        more: Callable[[], list[Item]] | None = None,
        give_back: Callable[[list[Item]], None] = lambda items: None,
        window: int = 1,
        max_pending: int = 1000,
    ) -> None:
        """Settle ``items``, and those ``more`` claims while fewer than ``window`` invoices could
        be charged now (and fewer than ``max_pending`` are held); until everything is settled, or
        ``stop`` is set: then what was not started is handed to ``give_back``, and what was
        started is finished. Each outcome goes to ``on_result``."""
        pending = list(items or [])
        busy: set[int] = set()  # methods with a call in flight
        inflight = 0
        replies: queue.SimpleQueue = queue.SimpleQueue()
        pool = _CallPool(self.concurrency, replies) if self.concurrency > 1 else None
        try:
            while True:
                if self.stop.is_set():
                    more = None
                    untouched = [
                        i for i in pending if not i.touched and i.reply is NO_REPLY and i.error is None
                    ]
                    if untouched:
                        give_back(untouched)
                        pending = [i for i in pending if i.touched or i.reply is not NO_REPLY or i.error]
                ready = self._ready(pending, busy)
                if (
                    more is not None
                    and len(pending) + inflight < max_pending
                    and len(ready) + inflight < window
                ):
                    claimed = more()
                    if not claimed:
                        more = None
                    pending += claimed
                    continue
                if inflight:
                    replied = self._replies(replies, wait=not ready)
                    for item in replied:
                        inflight -= 1
                        busy.discard(item.attempt.method_id)
                        pending.append(item)
                    if replied:
                        continue  # look again, with the replies in
                if not ready:
                    if not pending and not inflight and more is None:
                        return
                    continue
                chosen = {id(item) for item in ready}
                pending = [item for item in pending if id(item) not in chosen]
                for item in self._step(ready, busy):
                    if pool is None:
                        pending.append(_call(item))
                    else:
                        busy.add(item.attempt.method_id)
                        pool.submit(item)
                        inflight += 1
                for item in ready:
                    if item.result is not None:
                        self.on_result(item.result)
                    elif item.attempt is None:
                        pending.append(item)  # waits for a method another invoice is using
        finally:
            if pool is not None:
                pool.shutdown()

    @staticmethod
    def _replies(replies: queue.SimpleQueue, *, wait: bool) -> list[Item]:
        """The replies in; if ``wait``, after waiting a moment for the first."""
        replied = []
        try:
            if wait:
                replied.append(replies.get(timeout=0.2))
            while True:
                replied.append(replies.get_nowait())
        except queue.Empty:
            return replied

    def _ready(self, pending: list[Item], busy: set[int]) -> list[Item]:
        """Items that can move now: those with a reply in, and at most one per free method."""
        ready, chosen = [], set()
        for item in pending:
            method_id = item.wanted_method()
            if method_id is None:
                ready.append(item)
            elif method_id not in busy and method_id not in chosen:
                chosen.add(method_id)
                ready.append(item)
        return ready

    # One step: one transaction ----------------------------------------------------------------

    def _step(self, items: list[Item], busy: set[int]) -> list[Item]:
        """Move ``items`` as far as they go without a gateway call, in one transaction; returns
        those with a call to make. If the transaction fails, each item is retried alone, so one
        bad invoice never holds up the others."""
        # A call that raised ends its invoice here, before the transaction of the others.
        for item in items:
            if item.error is not None:
                self._fail(item, item.error)
        items = [item for item in items if item.result is None]
        if not items:
            return []
        snapshots = [item.snapshot() for item in items]
        try:
            return self._step_in_transaction(items, busy)
        except Exception as exc:
            for item, snapshot in zip(items, snapshots, strict=True):
                item.restore(snapshot)
            if len(items) == 1:
                self._fail(items[0], exc)
                return []
            return [call for item in items for call in self._step([item], busy)]

    def _fail(self, item: Item, exc: Exception) -> None:
        """An unexpected error: its lease lapses and a later run retries the invoice; whatever is
        unresolved is reconciled first."""
        logger.error("Settling invoice %s failed", item.invoice.number, exc_info=exc)
        item.attempt, item.reply, item.error = None, NO_REPLY, None
        item.result = self._result(item, Outcome.ERROR, message=str(exc)[:200])

    def _step_in_transaction(self, items: list[Item], busy: set[int]) -> list[Item]:
        step = _Step(now=timezone.now(), busy=set(busy))
        with transaction.atomic():
            held = self._fence(items)
            # Replies first: a hard decline blocks its method before anything else is started.
            for item in held:
                if item.reply is not NO_REPLY:
                    self._record(item, step)
            if step.attempt_updates:
                update_rows(step.attempt_updates, ATTEMPT_FIELDS)
            for attempt in step.blocks:
                PaymentMethod.objects.filter(pk=attempt.method_id, blocked_at__isnull=True).update(
                    blocked_at=step.now, blocked_reason=attempt.decline_code
                )
            # Fresh rows of the methods the invoices still going may start: one removed or blocked
            # since the claim is skipped, not charged.
            wanted = {
                s.method.pk for item in held if item.result is None for s in item.plan if not s.skip_reason
            }
            step.methods = PaymentMethod.objects.in_bulk(wanted) if wanted else {}
            # Invoices already on their way go first, then new ones.
            for item in sorted(held, key=lambda item: not item.touched):
                if item.result is None:
                    self._advance(item, step)
            self._write(step)
        return step.calls

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

    def _record(self, item: Item, step: _Step) -> None:
        """Take in the gateway's reply for the item's attempt."""
        attempt, result = item.attempt, item.reply
        item.reply = NO_REPLY
        if result is None:
            attempt.status, attempt.message = Status.UNKNOWN, "The gateway did not answer in time."
        elif result.status == ChargeStatus.SUCCEEDED:
            attempt.status, attempt.completed_at = Status.SUCCEEDED, step.now
        elif result.status == ChargeStatus.PENDING:
            attempt.status = Status.PENDING
        else:
            attempt.status, attempt.completed_at = Status.FAILED, step.now
            attempt.decline_code = result.decline_code
            attempt.decline_class = declines.decline_class(result.decline_code)
            attempt.message = result.message[:300]
            if attempt.decline_class == declines.HARD:
                step.blocks.append(attempt)
        if result is not None:
            attempt.gateway_reference = result.reference
        step.attempt_updates.append(attempt)
        item.attempt = None
        if attempt.status == Status.SUCCEEDED:
            self._paid(item, attempt, step)
        elif attempt.status == Status.FAILED:
            item.failed.append(attempt)
            if item.replay:
                item.resume_after = attempt.position or 0
        else:
            # Pending or unknown: let go, so the next run (any worker) resolves it first.
            item.invoice.next_attempt_at = self._later_than_run(step.now)
            self._release(item, step)
            item.result = self._stopped_result(item, attempt.status)

    def _advance(self, item: Item, step: _Step) -> None:
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
                if item.resume_after:
                    item.plan = [s for s in item.plan if (s.position or 0) > item.resume_after]
            if not item.plan:
                self._all_failed(item, step)
                return
            plan_step = item.plan[0]
            if not plan_step.skip_reason:
                if plan_step.method.pk in step.busy:
                    return  # waits for the method
                method = step.methods.get(plan_step.method.pk, plan_step.method)
                # Removed or blocked since the claim: recorded as a skip instead.
                if not method.is_active:
                    plan_step = dataclasses.replace(
                        plan_step, method=method, skip_reason=PaymentAttempt.SkipReason.REMOVED
                    )
                elif method.blocked_at is not None:
                    plan_step = dataclasses.replace(
                        plan_step, method=method, skip_reason=PaymentAttempt.SkipReason.BLOCKED
                    )
            item.plan.pop(0)
            if plan_step.skip_reason:
                item.skips.append(plan_step)
                item.skipped += 1
                continue
            self._write_skips(item, step)
            attempt = self._new_attempt(
                item,
                method=method,
                position=plan_step.position,
                status=Status.STARTED,
                idempotency_key=f"settle-{item.invoice.pk}-{item.next_sequence}",
            )
            item.attempts += 1
            step.new_attempts.append(attempt)
            self._make_call(item, attempt, step, replay=False)
            return

    def _make_call(self, item: Item, attempt: PaymentAttempt, step: _Step, *, replay: bool) -> None:
        item.attempt, item.replay, item.touched = attempt, replay, True
        step.busy.add(attempt.method_id)
        step.calls.append(item)
        step.heartbeat.append(item.invoice.pk)

    def _write_skips(self, item: Item, step: _Step) -> None:
        for skip in item.skips:
            step.new_attempts.append(
                self._new_attempt(
                    item,
                    method=skip.method,
                    position=skip.position,
                    status=Status.SKIPPED,
                    skip_reason=skip.skip_reason,
                    completed_at=step.now,
                )
            )
        item.skips = []

    def _new_attempt(self, item: Item, **fields) -> PaymentAttempt:
        """The item's next attempt row, numbered in order."""
        attempt = PaymentAttempt(
            invoice=item.invoice,
            sequence=item.next_sequence,
            retry_round=item.invoice.retry_round,
            amount_minor=item.invoice.amount_minor,
            currency=item.invoice.currency,
            trigger=self.trigger,
            initiated_by=self.actor,
            run=self.run,
            **fields,
        )
        item.next_sequence += 1
        return attempt

    def _release(self, item: Item, step: _Step) -> None:
        invoice = item.invoice
        invoice.lease_token, invoice.lease_owner, invoice.lease_expires_at = "", "", None
        step.invoices[invoice.pk] = invoice

    def _later_than_run(self, when: datetime.datetime) -> datetime.datetime:
        """A reschedule is always after this run's as-of, so one run never picks an invoice twice."""
        return max(when, self.as_of + datetime.timedelta(microseconds=1))

    def _paid(self, item: Item, attempt: PaymentAttempt, step: _Step) -> None:
        invoice = item.invoice
        before = invoice.status
        invoice.status = Invoice.Status.PAID
        invoice.paid_at = step.now
        invoice.paid_by_attempt = attempt
        invoice.paid_by_method_id = attempt.method_id
        invoice.paid_by_backup = (attempt.position or 1) > 1
        invoice.next_attempt_at = None
        self._release(item, step)
        step.audits.append(
            audit_event(
                account=invoice.account,
                action=AuditEvent.Action.INVOICE_PAID,
                actor=self.actor,
                actor_label=self.actor_label,
                obj=invoice,
                before={"status": before},
                after={"status": invoice.status, "method": attempt.method_id, "position": attempt.position},
            )
        )
        if invoice.account.status != Account.Status.ACTIVE:
            step.account_changes[invoice.account_id].append((Outcome.PAID, item))
        if invoice.paid_by_backup:
            step.notifications.append(
                emails.backup_charged(invoice=invoice, attempt=attempt, failed=item.failed)
            )
        item.result = self._paid_result(item, attempt)

    def _all_failed(self, item: Item, step: _Step) -> None:
        """Every method failed or was skipped. A scheduled run moves the invoice along the retry
        schedule; Pay now and Retry now leave the schedule alone."""
        invoice = item.invoice
        if not item.order and not item.resume_after:
            item.skips.append(
                PlanStep(method=None, position=None, skip_reason=PaymentAttempt.SkipReason.NO_METHODS)
            )
            item.skipped += 1
        skipped = list(item.skips)
        self._write_skips(item, step)
        self._release(item, step)
        if not self.scheduled:
            item.result = self._final_result(item, Outcome.DECLINED)
            return
        before = invoice.status
        schedule = settings.BILLING_RETRY_DAYS
        if invoice.retry_round >= len(schedule):
            invoice.status = Invoice.Status.UNCOLLECTIBLE
            invoice.next_attempt_at = None
            outcome = Outcome.UNCOLLECTIBLE
        else:
            invoice.status = Invoice.Status.PAST_DUE
            invoice.first_failed_at = invoice.first_failed_at or self.as_of
            delay = datetime.timedelta(days=schedule[invoice.retry_round])
            invoice.next_attempt_at = self._later_than_run(invoice.first_failed_at + delay)
            invoice.retry_round += 1
            outcome = Outcome.PAST_DUE
            step.notifications.append(emails.all_failed(invoice=invoice, failed=item.failed, skipped=skipped))
        step.audits.append(
            audit_event(
                account=invoice.account,
                action=AuditEvent.Action.INVOICE_UNCOLLECTIBLE
                if outcome == Outcome.UNCOLLECTIBLE
                else AuditEvent.Action.INVOICE_PAST_DUE,
                actor_label=SETTLEMENT_ACTOR,
                obj=invoice,
                before={"status": before},
                after={
                    "status": invoice.status,
                    "retry_round": invoice.retry_round,
                    "at": step.now.isoformat(),
                },
            )
        )
        step.account_changes[invoice.account_id].append((outcome, item))
        item.result = self._final_result(item, outcome)

    def _write(self, step: _Step) -> None:
        if step.new_attempts:
            insert_rows(step.new_attempts)
        if step.invoices:
            for invoice in step.invoices.values():
                invoice.updated_at = step.now
            update_rows(step.invoices.values(), INVOICE_FIELDS)
        heartbeat = [pk for pk in step.heartbeat if pk not in step.invoices]
        if heartbeat:
            # A worker that is making progress keeps its leases.
            Invoice.objects.filter(pk__in=heartbeat).update(
                lease_expires_at=step.now + datetime.timedelta(seconds=settings.BILLING_LEASE_SECONDS)
            )
        if step.audits:
            insert_rows(step.audits)
        if step.account_changes:
            self._change_accounts(step)
        notification_queue_many(step.notifications)

    def _change_accounts(self, step: _Step) -> None:
        """Account status follows its invoices: suspended when one is uncollectible, past due when
        one goes past due, active again after a payment once nothing is past due."""
        accounts = (
            Account.objects.select_for_update().filter(pk__in=list(step.account_changes)).order_by("pk")
        )
        for account in accounts:
            changes = step.account_changes[account.pk]
            outcomes = {outcome for outcome, _item in changes}
            if Outcome.UNCOLLECTIBLE in outcomes:
                invoice = next(item.invoice for outcome, item in changes if outcome == Outcome.UNCOLLECTIBLE)
                if account_set_status(
                    account=account,
                    status=Account.Status.SUSPENDED,
                    actor_label=SETTLEMENT_ACTOR,
                    reason=f"invoice {invoice.number} uncollectible",
                ):
                    notification_queue_many([emails.account_suspended(invoice=invoice)])
            elif Outcome.PAST_DUE in outcomes:
                if account.status == Account.Status.ACTIVE:
                    invoice = next(item.invoice for outcome, item in changes if outcome == Outcome.PAST_DUE)
                    account_set_status(
                        account=account,
                        status=Account.Status.PAST_DUE,
                        actor_label=SETTLEMENT_ACTOR,
                        reason=f"invoice {invoice.number} past due",
                    )
            elif account.status != Account.Status.ACTIVE and not (
                Invoice.objects.filter(account=account, status=Invoice.Status.PAST_DUE).exists()
            ):
                # A later payment restores an account, once nothing is left past due.
                account_set_status(
                    account=account,
                    status=Account.Status.ACTIVE,
                    actor_label=SETTLEMENT_ACTOR,
                    reason="payment received",
                )

    # Results -----------------------------------------------------------------------------------

    def _result(self, item: Item, outcome: Outcome, **kwargs) -> InvoiceResult:
        return InvoiceResult(
            invoice_id=item.invoice.pk, number=item.invoice.number, outcome=outcome, **kwargs
        )

    def _paid_result(self, item: Item, attempt: PaymentAttempt) -> InvoiceResult:
        return self._result(
            item,
            Outcome.PAID,
            paid_by_backup=(attempt.position or 1) > 1,
            paid_position=attempt.position,
            attempts=1 if item.replay else item.attempts,
            skipped=0 if item.replay else item.skipped,
            message=_("Paid with %(method)s (%(position)s).")
            % {"method": attempt.method.label, "position": position_label(attempt.position)},
        )

    def _stopped_result(self, item: Item, status: str) -> InvoiceResult:
        counts = {"attempts": 1} if item.replay else {"attempts": item.attempts, "skipped": item.skipped}
        if status == Status.PENDING:
            return self._result(item, Outcome.PENDING, message=_("A bank debit is still clearing."), **counts)
        return self._result(
            item,
            Outcome.UNKNOWN,
            message=_("The payment gateway did not answer; we will check again."),
            **counts,
        )

    def _final_result(self, item: Item, outcome: Outcome) -> InvoiceResult:
        if outcome == Outcome.DECLINED:
            message = _("Every payment method we tried was declined.")
        elif not item.order:
            message = _("There is no payment method in the charge order.")
        else:
            message = _("Every payment method failed.")
        return self._result(item, outcome, attempts=item.attempts, skipped=item.skipped, message=message)
