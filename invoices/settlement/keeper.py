"""Short leases, kept alive while their invoices are in flight.

A run holds each invoice it claimed under a lease of ``BILLING_LEASE_SECONDS``. While the run is
alive, a heartbeat thread renews the leases of the invoices it still holds (and the run's own
heartbeat and counts) every quarter of that; when the process is killed, the renewals stop and
the next run takes the invoices over as soon as the lease runs out. A worker that stalls past its
lease (a pause, a lost network) is fenced: its later writes change nothing.
"""

import datetime
import logging
import threading
import time
from collections import Counter

from django.conf import settings
from django.db import connection, connections, transaction
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from invoices.models import Invoice, SettlementRun

logger = logging.getLogger("invoices.settlement")


def lease_seconds() -> int:
    return settings.BILLING_LEASE_SECONDS


def lease_until(now: datetime.datetime) -> datetime.datetime:
    return now + datetime.timedelta(seconds=lease_seconds())


class LeaseKeeper:
    """Renews the leases of the invoices a run holds, and the run's heartbeat, on a thread of its own."""

    def __init__(self, *, run: SettlementRun | None = None, counts: Counter | None = None):
        self.run, self.counts = run, counts
        self.held: dict[int, str] = {}  # invoice id → lease token
        self.since: dict[int, float] = {}  # invoice id → when its lease was last known ours (monotonic)
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.interval = max(1.0, lease_seconds() / 4)
        # Inside a test's own transaction nobody else can see these rows: nothing to keep alive.
        self.enabled = not any(getattr(block, "_from_testcase", False) for block in connection.atomic_blocks)
        self.thread = threading.Thread(target=self._beat, name="lease-keeper", daemon=True)

    def __enter__(self) -> "LeaseKeeper":
        if self.enabled:
            self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        if self.thread.is_alive():
            self.thread.join(timeout=10)

    def hold(self, invoices, token: str) -> None:
        with self.lock:
            for invoice in invoices:
                self.held[invoice.pk] = token
                self.since[invoice.pk] = time.monotonic()

    def fresh(self, item) -> bool:
        """Whether the item's lease is surely still ours, with a margin for the call to go out. A
        worker that was paused longer than its lease (and so may have been replaced) calls nothing."""
        if not self.enabled:
            return True
        since = self.since.get(item.invoice.pk)
        margin = min(2.0, lease_seconds() / 4)
        return since is not None and time.monotonic() - since < lease_seconds() - margin

    def drop(self, invoice_ids) -> None:
        with self.lock:
            for invoice_id in invoice_ids:
                self.held.pop(invoice_id, None)
                self.since.pop(invoice_id, None)

    def _beat(self) -> None:
        try:
            while not self.stopped.wait(self.interval):
                try:
                    self.renew()
                except Exception:  # the next beat tries again; the fence keeps a lost lease safe
                    logger.warning("Could not renew settlement leases", exc_info=True)
        finally:
            connections.close_all()

    def renew(self) -> int:
        """Extend the leases still ours (a lapsed one another worker took has another token) that
        have run for a beat or more: an invoice settled within a beat of its claim costs no write."""
        with self.lock:
            due = time.monotonic() - self.interval
            held = {pk: token for pk, token in self.held.items() if self.since.get(pk, 0.0) <= due}
        started = time.monotonic()
        now = timezone.now()
        renewed = 0
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:  # never wait long behind a lock: beat again later
                    cursor.execute("SET LOCAL lock_timeout = '2s'")
            by_token: dict[str, list[int]] = {}
            for invoice_id, token in held.items():
                by_token.setdefault(token, []).append(invoice_id)
            ours = []
            for token, invoice_ids in by_token.items():
                # Only leases still ours: one that lapsed and was taken over has another token.
                mine = list(
                    Invoice.objects.filter(pk__in=invoice_ids, lease_token=token).values_list("pk", flat=True)
                )
                renewed += Invoice.objects.filter(pk__in=mine, lease_token=token).update(
                    lease_expires_at=lease_until(now)
                )
                ours += mine
            if self.run is not None:
                counts = (
                    {name: self.counts.get(name, 0) for name in SettlementRun.COUNT_FIELDS}
                    if self.counts
                    else {}
                )
                SettlementRun.objects.filter(pk=self.run.pk, status=SettlementRun.Status.RUNNING).update(
                    heartbeat_at=now, **counts
                )
        with self.lock:
            for invoice_id in ours:
                if invoice_id in self.held:
                    self.since[invoice_id] = max(self.since.get(invoice_id, 0.0), started)
        return renewed


def runs_mark_interrupted(*, now: datetime.datetime | None = None) -> int:
    """Runs still marked running whose heartbeat stopped (killed, or their host lost) are shown as
    interrupted, with the counts they reached; finished at their last heartbeat."""
    now = now or timezone.now()
    # A live run beats every quarter lease; one silent for a whole lease has lost its leases anyway.
    stale = now - datetime.timedelta(seconds=lease_seconds())
    return (
        SettlementRun.objects.filter(status=SettlementRun.Status.RUNNING)
        .filter(Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True, started_at__lt=stale))
        .update(status=SettlementRun.Status.INTERRUPTED, finished_at=Coalesce("heartbeat_at", "started_at"))
    )
