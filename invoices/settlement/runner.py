"""A settlement run: claim due invoices in small batches and settle each, with up to N invoices
(and so N gateway calls) in flight, until nothing is due, the limit is reached or we are told to stop."""

import dataclasses
import datetime
import logging
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable

from django.db import connections
from django.utils import timezone

from invoices.models import Invoice, PaymentAttempt, SettlementRun

from .cascade import Context, cascade_claimed
from .claim import claim_due, due_queryset, new_lease, release
from .outcomes import InvoiceResult, Outcome
from .plan import PlanStep, build_plan, charge_orders, recent_attempt_counts

logger = logging.getLogger("invoices.settlement")

BATCH_SIZE = 20


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


class _Worker:
    """Claims a batch, settles it invoice by invoice, repeats. One per thread (and DB connection)."""

    def __init__(self, *, run, owner, as_of, account_id, budget, stop, on_result):
        self.run, self.owner, self.as_of, self.account_id = run, owner, as_of, account_id
        self.budget, self.stop, self.on_result = budget, stop, on_result
        self.counts = Counter()

    def __call__(self, *, own_thread: bool = True) -> None:
        try:
            while not self.stop.is_set():
                size = self.budget.take(BATCH_SIZE)
                if not size:
                    return
                # A fresh lease token per batch: fencing tells every claim apart, even two claims
                # of one invoice by this same run after a lease ran out.
                lease = new_lease(owner=self.owner)
                invoices = claim_due(lease=lease, as_of=self.as_of, limit=size, account_id=self.account_id)
                self.budget.give_back(size - len(invoices))
                if not invoices:
                    return
                self._settle_batch(invoices, lease)
        finally:
            if own_thread:
                connections.close_all()

    def _settle_batch(self, invoices: list[Invoice], lease) -> None:
        # What every invoice in the batch needs is read once for the batch.
        orders = charge_orders(account_ids=[i.account_id for i in invoices])
        counts = recent_attempt_counts(
            method_ids=[m.pk for order in orders.values() for _, m in order], as_of=self.as_of
        )
        for index, invoice in enumerate(invoices):
            if self.stop.is_set():
                release(invoice_ids=[i.pk for i in invoices[index:]], lease=lease)
                self.budget.give_back(len(invoices) - index)
                return
            ctx = Context(invoice=invoice, lease=lease, as_of=self.as_of, run=self.run)
            try:
                result = cascade_claimed(ctx, order=orders.get(invoice.account_id, []), recent_counts=counts)
            except Exception as exc:
                # One bad invoice must not stop the others; its lease lapses and a later run retries.
                logger.exception("Settling invoice %s failed", invoice.number)
                result = InvoiceResult(invoice.pk, invoice.number, Outcome.ERROR, message=str(exc)[:200])
            _tally(self.counts, result)
            self.on_result(result)


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


def settlement_run(
    *,
    as_of: datetime.datetime | None = None,
    limit: int | None = None,
    account_id: int | None = None,
    concurrency: int = 1,
    stop: threading.Event | None = None,
    on_result: Callable[[InvoiceResult], None] = lambda result: None,
    options: dict | None = None,
) -> RunSummary:
    """Settle every due invoice. Safe to run in any number of processes at once."""
    started = time.monotonic()
    as_of = as_of or timezone.now()
    stop = stop or threading.Event()
    run = SettlementRun.objects.create(
        host=socket.gethostname(), pid=os.getpid(), as_of=as_of, options=options or {}
    )
    owner = f"{run.host}:{run.pid}:run-{run.pk}"
    budget = _Budget(limit)
    workers = [
        _Worker(
            run=run,
            owner=owner,
            as_of=as_of,
            account_id=account_id,
            budget=budget,
            stop=stop,
            on_result=on_result,
        )
        for _ in range(max(1, concurrency))
    ]
    if len(workers) == 1:
        # In the calling thread: keeps its connection (and tests' transactions) as they are.
        workers[0](own_thread=False)
    else:
        threads = [threading.Thread(target=w, name=f"settle-{i}") for i, w in enumerate(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    counts = sum((w.counts for w in workers), Counter())
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
    orders = charge_orders(account_ids=[i.account_id for i in invoices])
    counts = recent_attempt_counts(
        method_ids=[m.pk for order in orders.values() for _, m in order], as_of=as_of
    )
    unresolved = {}
    for attempt in PaymentAttempt.objects.filter(
        invoice__in=invoices, status__in=PaymentAttempt.UNRESOLVED
    ).select_related("method"):
        unresolved.setdefault(attempt.invoice_id, []).append(attempt)
    return [
        DryRunItem(
            invoice=invoice,
            plan=build_plan(
                invoice=invoice, order=orders.get(invoice.account_id, []), as_of=as_of, recent_counts=counts
            ),
            unresolved=unresolved.get(invoice.pk, []),
        )
        for invoice in invoices
    ]
