"""Gateway calls of the settlement, always outside any database transaction: one after another, or
up to N at once on a pool of threads."""

import contextlib
import datetime
import logging
import queue
import threading
from collections.abc import Callable

from django.conf import settings
from django.db import connection, connections
from django.utils import timezone, translation

from core.db import Turns, close_own_connections, database_turn
from invoices.models import PaymentAttempt
from payments.customers import gateway_customer_reference
from payments.gateways import calls_together, get_gateway
from payments.gateways.base import ChargeResult, GatewayUnavailable
from payments.models import PaymentMethod

from .items import KEY_FORGOTTEN, METHOD_REMOVED, Item, LeaseExpired

logger = logging.getLogger("invoices.settlement")
Status = PaymentAttempt.Status


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
        # The account's customer at the processor (the method's account is the invoice's): read
        # with the item when it was prepared, or else now.
        customer = getattr(attempt, "gateway_customer", "")
        if not customer:
            with database_turn():
                customer = gateway_customer_reference(
                    account_id=attempt.method.account_id, gateway=gateway.name
                )
        if replay:
            # Resolve first: by the processor's reference if we learnt it, else by the attempt key.
            found = gateway.retrieve(attempt.gateway_reference) if attempt.gateway_reference else None
            if found is None:
                found = gateway.find(attempt.idempotency_key, customer=customer, since=attempt.created_at)
            if found is not None:
                return found
            if attempt.status == Status.PENDING:
                return None
            if _removed_since(attempt):
                # Never charge a card the customer took away: close the attempt once no call of
                # its own can still land, and until then leave it unresolved.
                return METHOD_REMOVED if _past_every_call(attempt) else None
            if not _key_still_kept(gateway, attempt):
                # Repeating the call now would be a new charge, not a replay. The lookups found no
                # charge, and every call for the attempt ended long ago: it was never charged.
                return KEY_FORGOTTEN
        # First call, or an attempt the gateway has no record of: the same key makes repeating it safe.
        return gateway.charge(
            customer=customer,
            method_token=attempt.method.token,
            amount_minor=attempt.amount_minor,
            currency=attempt.currency,
            idempotency_key=attempt.idempotency_key,
            metadata={"invoice": attempt.invoice.number, "attempt": attempt.idempotency_key},
            timeout=settings.GATEWAY_TIMEOUT_SECONDS,
        )
    except GatewayUnavailable as exc:
        logger.warning("Gateway did not answer for attempt %s: %s", attempt.idempotency_key, exc)
        return None


# Repeat a call only this long before the processor forgets its key (clocks differ, calls take time).
KEY_LIFETIME_MARGIN = datetime.timedelta(hours=1)


def _key_still_kept(gateway, attempt: PaymentAttempt) -> bool:
    """Whether the processor still keeps the attempt's key, so that repeating the call with it
    replays the first one. The key's life began with the first request, after the attempt was
    recorded."""
    lifetime = gateway.idempotency_key_lifetime
    if lifetime is None or attempt.created_at is None:
        return True
    return attempt.created_at > timezone.now() - (lifetime - KEY_LIFETIME_MARGIN)


def _removed_since(attempt: PaymentAttempt) -> bool:
    with database_turn():
        return PaymentMethod.objects.filter(
            pk=attempt.method_id, status=PaymentMethod.Status.REMOVED
        ).exists()


def _past_every_call(attempt: PaymentAttempt) -> bool:
    """Whether the attempt is older than any call for it that a paused worker could still have on
    its way: its lease, then the call's timeout. Only then does "no such charge" mean never."""
    settled_for = datetime.timedelta(
        seconds=settings.BILLING_LEASE_SECONDS + settings.GATEWAY_TIMEOUT_SECONDS
    )
    return attempt.created_at is not None and attempt.created_at <= timezone.now() - settled_for


def call(item: Item, lease_ok: Callable[[Item], bool] | None = None) -> Item:
    """Make the item's call; its reply (or the error it raised) stays on the item. ``lease_ok`` is
    asked first: a worker unsure of its lease calls nothing."""
    try:
        if lease_ok is not None and not lease_ok(item):
            raise LeaseExpired(f"the lease on invoice {item.invoice.number} may have run out")
        customer = item.gateway_customers.get(item.attempt.method.gateway)
        if customer:
            item.attempt.gateway_customer = customer
        item.reply = _call_gateway(item.attempt, replay=item.replay)
    except Exception as exc:  # a bug or a broken gateway: this invoice errors, the others go on
        item.error = exc
    return item


# At most this many of a pool's threads use the database at once (the rare lookups and writes of a
# call: an account's first processor customer, a replay), however many calls are in flight.
DATABASE_TURNS = 16


class CallPool:
    """Up to ``size`` gateway calls at once, on threads started as needed. In a pool of more than
    ``DATABASE_TURNS`` threads, a call's database work takes a turn (``core.db``), so the calls in
    flight hold no connection each; each thread closes its connections when the pool shuts down."""

    def __init__(self, size: int, replies: queue.SimpleQueue, lease_ok: Callable[[Item], bool] | None = None):
        self.size, self.replies, self.lease_ok = size, replies, lease_ok
        self.tasks: queue.SimpleQueue = queue.SimpleQueue()
        self.threads: list[threading.Thread] = []
        # A pool no larger than that keeps its threads' connections; a larger one takes turns.
        self.turns = Turns(DATABASE_TURNS) if size > DATABASE_TURNS else None
        # What the gateways share among the threads (the sandbox's ledger writer), until shutdown.
        self.together = contextlib.ExitStack()
        self.together.enter_context(calls_together())

    def submit(self, item: Item) -> None:
        if len(self.threads) < self.size:
            thread = threading.Thread(target=self._work, name=f"gateway-{len(self.threads)}", daemon=True)
            self.threads.append(thread)
            thread.start()
        self.tasks.put(item)

    def _work(self) -> None:
        if self.turns is not None:
            self.turns.join()
        try:
            while (item := self.tasks.get()) is not None:
                done = call(item, self.lease_ok)
                if self.turns is not None:
                    # What a call read outside a turn is given back too: no thread keeps a connection.
                    close_own_connections()
                self.replies.put(done)
        finally:
            connections.close_all()

    def shutdown(self) -> None:
        for _thread in self.threads:
            self.tasks.put(None)
        for thread in self.threads:
            thread.join()
        self.together.close()
