"""A settlement run: claim due invoices in batches and settle them together (see ``cascade``), with
up to N gateway calls in flight, until nothing is due, the limit is reached or we are told to stop."""

import contextlib
import dataclasses
import datetime
import logging
import os
import socket
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable

from django.db import connection
from django.utils import timezone

from invoices.models import Invoice, PaymentAttempt, SettlementRun
from notifications.outbox import OutboxSender

from .claim import claim_due, due_queryset, new_lease, release
from .engine import Engine, Item, items_prepare
from .keeper import LeaseKeeper, runs_mark_interrupted
from .outcomes import InvoiceResult, Outcome
from .plan import PlanStep, plan_inputs

logger = logging.getLogger("invoices.settlement")

# Invoices claimed at a time, and how many the engine keeps ready to charge (more, to keep the
# calls in flight busy): enough that every transaction carries many invoices.
BATCH_SIZE = 400
WINDOW = 200


@dataclasses.dataclass
class RunSummary:
    run: SettlementRun | None
    counts: Counter
    duration_s: float
    interrupted: bool = False

    def as_dict(self) -> dict:
        data = {name: self.counts.get(name, 0) for name in SettlementRun.COUNT_FIELDS}
        data["duration_s"] = round(self.duration_s, 3)
        return data


def _tally(counts: Counter, result: InvoiceResult) -> None:
    counts["considered"] += 1
    counts["skipped"] += result.skipped
    match result.outcome:
        case Outcome.PAID:
            counts["paid"] += 1
            counts["paid_by_backup" if result.paid_by_backup else "paid_by_primary"] += 1
        case Outcome.PAST_DUE | Outcome.UNCOLLECTIBLE | Outcome.PENDING | Outcome.UNKNOWN:
            counts[result.outcome.value] += 1
        case Outcome.ERROR:
            counts["errors"] += 1


class _Budget:
    """How many more invoices this run may claim (--limit), shared by the workers."""

    def __init__(self, limit: int | None):
        self.left = limit
        self.lock = threading.Lock()

    def take(self, n: int) -> int:
        with self.lock:
            if self.left is None:
                return n
            n = min(n, self.left)
            self.left -= n
            return n

    def give_back(self, n: int) -> None:
        if n and self.left is not None:
            with self.lock:
                self.left += n


class _FreshPlans:
    """PostgreSQL keeps a connection's plans, the foreign-key checks' included, and a check planned
    while a table was nearly empty (a scan of a few pages) stays a scan as a run adds rows by the
    thousand. Instead of planning every statement afresh, the run's connection is opened again,
    between steps, each time the run has doubled the attempts there were when its plans were made:
    a handful of times in a run of a million invoices."""

    def __init__(self):
        self.enabled = connection.vendor == "postgresql" and not any(
            getattr(block, "_from_testcase", False) for block in connection.atomic_blocks
        )
        self.rows = self._attempts() if self.enabled else 0
        self.added = 0

    @staticmethod
    def _attempts() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = %s::regclass",
                [PaymentAttempt._meta.db_table],
            )
            return cursor.fetchone()[0]

    def settled(self, n: int) -> None:
        """Called between steps, outside any transaction, with the invoices settled meanwhile."""
        if not self.enabled:
            return
        self.added += n
        if self.added >= max(1000, self.rows) and not connection.in_atomic_block:
            connection.close()
            self.rows, self.added = self.rows + self.added, 0


def _leave_queued(email_ids: list[int]) -> None:
    """The run's emails stay queued, due at once, for ``send_notifications`` to send."""


def settlement_run(
    *,
    as_of: datetime.datetime | None = None,
    limit: int | None = None,
    account_id: int | None = None,
    concurrency: int = 1,
    stop: threading.Event | None = None,
    on_result: Callable[[InvoiceResult], None] = lambda result: None,
    options: dict | None = None,
    send_emails: bool = True,
) -> RunSummary:
    """Settle every due invoice, with up to ``concurrency`` gateway calls at once. Safe to run in
    any number of processes at once. The emails the run queues are sent by its own outbox sender,
    on a thread of its own, or with ``send_emails=False`` left queued for ``send_notifications``."""
    started = time.monotonic()
    as_of = as_of or timezone.now()
    stop = stop or threading.Event()
    runs_mark_interrupted()
    run = SettlementRun.objects.create(
        host=socket.gethostname(),
        pid=os.getpid(),
        as_of=as_of,
        options=options or {},
        heartbeat_at=timezone.now(),
    )
    owner = f"{run.host}:{run.pid}:run-{run.pk}"
    budget = _Budget(limit)
    counts = Counter()
    window = max(WINDOW, 2 * concurrency)
    keeper = LeaseKeeper(run=run, counts=counts)

    plans = _FreshPlans()
    settled_before = [0]

    def more() -> list[Item]:
        plans.settled(counts["considered"] - settled_before[0])
        settled_before[0] = counts["considered"]
        # Claim no further ahead than the run can work: after a kill -9 no more invoices than
        # that wait for their leases to run out.
        size = budget.take(min(BATCH_SIZE, window))
        if not size:
            return []
        # A fresh lease token per batch: fencing tells every claim apart, even two claims of one
        # invoice by this same run after a lease ran out.
        lease = new_lease(owner=owner)
        invoices = claim_due(lease=lease, as_of=as_of, limit=size, account_id=account_id)
        budget.give_back(size - len(invoices))
        keeper.hold(invoices, lease.token)
        return items_prepare(invoices, lease=lease, as_of=as_of)

    def give_back(items: list[Item]) -> None:
        by_lease = defaultdict(list)
        for item in items:
            by_lease[item.lease].append(item.invoice.pk)
        for lease, invoice_ids in by_lease.items():
            keeper.drop(invoice_ids)
            release(invoice_ids=invoice_ids, lease=lease)
        budget.give_back(len(items))

    def result(outcome: InvoiceResult) -> None:
        keeper.drop([outcome.invoice_id])
        _tally(counts, outcome)
        on_result(outcome)

    sender = OutboxSender() if send_emails else None
    engine = Engine(
        as_of=as_of,
        run=run,
        concurrency=concurrency,
        stop=stop,
        on_result=result,
        lease_ok=keeper.fresh,
        send_later=sender.send_later if sender else _leave_queued,
    )
    with keeper, sender or contextlib.nullcontext():
        engine.settle(more=more, give_back=give_back, window=window, max_pending=2 * window)
    for name in SettlementRun.COUNT_FIELDS:
        setattr(run, name, counts.get(name, 0))
    run.finished_at = timezone.now()
    run.status = SettlementRun.Status.INTERRUPTED if stop.is_set() else SettlementRun.Status.COMPLETED
    run.save()
    return RunSummary(
        run=run, counts=counts, duration_s=time.monotonic() - started, interrupted=stop.is_set()
    )


@dataclasses.dataclass
class DryRunItem:
    invoice: Invoice
    plan: list[PlanStep]
    unresolved: list[PaymentAttempt]


def settlement_dry_run(
    *, as_of: datetime.datetime | None = None, limit: int | None = None, account_id: int | None = None
) -> list[DryRunItem]:
    """What a run would do, per due invoice; reads only, charges nothing."""
    as_of = as_of or timezone.now()
    invoices = list(due_queryset(as_of=as_of, account_id=account_id).select_related("account")[:limit])
    inputs = plan_inputs(invoices=invoices, as_of=as_of)
    return [
        DryRunItem(
            invoice=invoice,
            plan=inputs.plan_for(invoice),
            unresolved=inputs.unresolved.get(invoice.pk, []),
        )
        for invoice in invoices
    ]
