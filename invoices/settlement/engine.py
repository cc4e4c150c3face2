"""Settling claimed invoices: resolve what is unresolved, then charge down the charge order.

The rules that keep every invoice charged at most once:
- an attempt row (status ``started``, deterministic idempotency key) commits before the gateway
  is called, and the call happens outside any transaction (``calls``);
- every write after a call is fenced on the invoice's lease token: a worker that stalled past its
  lease and was replaced changes nothing (``cascade``);
- an attempt whose outcome is unknown is resolved by asking the gateway, or by repeating the
  call with the same key (which the gateway answers without charging twice), never with a new key;
- while any attempt is unresolved nothing else is charged for that invoice.

How it goes fast: an ``Engine`` settles many claimed invoices together. Each *step* is one
transaction for every invoice that can move (``cascade.Cascade.step``). Between steps the gateway
calls run, outside any transaction: one after another, or up to ``concurrency`` at once on a pool
of threads. One payment method is never charged twice at the same time, so a card declined as
lost is blocked before another invoice of the same account tries it.
"""

import datetime
import queue
import threading
from collections.abc import Callable

from invoices.models import PaymentAttempt, SettlementRun

from .calls import CallPool, call
from .cascade import Cascade
from .items import NO_REPLY, Item, Lease, items_prepare
from .outcomes import InvoiceResult

__all__ = ["Engine", "Item", "Lease", "items_prepare"]


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
        lease_ok: Callable[[Item], bool] | None = None,
        send_later: Callable[[list[int]], None] | None = None,
    ):
        self.cascade = Cascade(as_of=as_of, run=run, trigger=trigger, actor=actor, send_later=send_later)
        self.lease_ok = lease_ok
        self.concurrency = max(1, concurrency)
        self.stop = stop or threading.Event()
        self.on_result = on_result

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
        pool = CallPool(self.concurrency, replies, self.lease_ok) if self.concurrency > 1 else None
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
                        pending.append(call(item, self.lease_ok))
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

    @staticmethod
    def _ready(pending: list[Item], busy: set[int]) -> list[Item]:
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

    def _step(self, items: list[Item], busy: set[int]) -> list[Item]:
        """Move ``items`` as far as they go without a gateway call, in one transaction; returns
        those with a call to make. If the transaction fails, each item is retried alone, so one
        bad invoice never holds up the others."""
        # A call that raised ends its invoice here, before the transaction of the others.
        for item in items:
            if item.error is not None:
                self.cascade.fail(item, item.error)
        items = [item for item in items if item.result is None]
        if not items:
            return []
        snapshots = [item.snapshot() for item in items]
        try:
            return self.cascade.step(items, busy)
        except Exception as exc:
            for item, snapshot in zip(items, snapshots, strict=True):
                item.restore(snapshot)
            if len(items) == 1:
                self.cascade.fail(items[0], exc)
                return []
            return [made for item in items for made in self._step([item], busy)]
