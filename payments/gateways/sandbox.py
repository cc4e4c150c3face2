"""The sandbox gateway: a payment processor embedded in the project for development, demos, tests and
benchmarks, which behaves like a remote one.

Its ledger (payments/sandbox/charges.py) lives in the "sandbox" database and every write commits there
on its own, so nothing the caller rolls back can erase a charge. Outcomes follow the test number a
token was made from: Stripe's test cards, plus fault cards, IBANs and US bank accounts of our own
(payments/sandbox/numbers.py; docs/sandbox.md lists them all). Like a processor's test mode it takes
no other number.

It is the one gateway that takes numbers on the server (``tokenize_card``, ``tokenize_sepa_debit``,
``tokenize_ach_debit``: its own methods, not the interface's); ``finish_setup`` then saves such a token
to the account's customer, as a browser-collected method would be.

Settings: SANDBOX_LATENCY_MS (added to every call), SANDBOX_CLEARING_SECONDS (how long a bank debit
stays pending) and SANDBOX_SLOW_REPLY_SECONDS (how slow the slow card is).
"""

import contextlib
import datetime
import logging
from collections.abc import Mapping

from django.db import IntegrityError, transaction

from core.db import database_turn
from payments.sandbox import events as sandbox_events
from payments.sandbox.charges import (
    ChargeRequest,
    after_cursor,
    charge_cursor,
    charge_record,
    charge_result,
    check_amount,
    check_currency,
    check_idempotency_key,
    clear_if_due,
    fault_after_charge,
    fault_before_charge,
    find_token,
    is_fault_card,
    record_charges,
    refund_record,
    refund_result,
    replay_charge,
)
from payments.sandbox.collection import SandboxCollection, network_delay
from payments.sandbox.ledger import GroupWriter
from payments.sandbox.models import SandboxCharge, SandboxRefund
from payments.sandbox.numbers import (
    BAD_GATEWAY_ONCE,
    REPLY_LOST,
    SLOW_REPLY,
    TEST_CARDS,
    TEST_IBANS,
    TEST_US_ACCOUNTS,
    TIMEOUT_BEFORE_CHARGE,
)
from payments.sandbox.routers import SANDBOX_DB

from .base import (
    ChargePage,
    ChargeResult,
    Gateway,
    GatewayError,
    GatewayEvent,
    IdempotencyConflict,
    OnReference,
    RefundResult,
)

__all__ = [
    "BAD_GATEWAY_ONCE",
    "REPLY_LOST",
    "SLOW_REPLY",
    "TEST_CARDS",
    "TEST_IBANS",
    "TEST_US_ACCOUNTS",
    "TIMEOUT_BEFORE_CHARGE",
    "SandboxGateway",
]

logger = logging.getLogger("payments.sandbox")

_ledger = GroupWriter(record_charges, name="sandbox ledger writer")


class SandboxGateway(SandboxCollection, Gateway):
    name = "sandbox"

    @contextlib.contextmanager
    def calls_together(self):
        """Charges made meanwhile are written by the ledger's writer, together (on PostgreSQL)."""
        _ledger.open()
        try:
            yield
        finally:
            _ledger.close()

    @staticmethod
    def _writes_together() -> bool:
        """Whether this call's charge goes to the ledger's writer: one is running, and this thread
        holds no transaction on the ledger that the writer's own connection could not see into
        (a test's). SQLite keeps one writer at a time anyway: each call writes its own."""
        own = transaction.get_connection(SANDBOX_DB)
        return _ledger.running and own.vendor == "postgresql" and not own.in_atomic_block

    # Charges.

    def charge(
        self,
        *,
        customer: str,
        method_token: str,
        amount_minor: int,
        currency: str,
        idempotency_key: str,
        metadata: Mapping[str, str],
        timeout: float,
        on_reference: OnReference | None = None,
    ) -> ChargeResult:
        network_delay()
        check_amount(amount_minor)
        check_idempotency_key(idempotency_key)
        params = {"token": method_token, "amount_minor": amount_minor, "currency": check_currency(currency)}
        charge, created, collided = None, False, False
        if self._writes_together():
            method, charge = _ledger.submit(
                ChargeRequest(
                    idempotency_key=idempotency_key,
                    customer=customer,
                    metadata={str(k): str(v) for k, v in metadata.items()},
                    **params,
                )
            )
            created = charge is not None
            collided = charge is None and not is_fault_card(method)  # the key was in the ledger
        else:
            with database_turn():
                method = find_token(method_token)
        if charge is None:
            # The ledger read or written by this call itself: a replay, a fault card, one call at a
            # time (a call of the settlement's pool waits for a turn at the database for it).
            with database_turn():
                charge, created = self._charge_alone(
                    method,
                    idempotency_key=idempotency_key,
                    customer=customer,
                    metadata=metadata,
                    timeout=timeout,
                    params=params,
                    look_first=collided or is_fault_card(method),
                )
        logger.info(
            "Charge %s on %s for %s %s: %s %s",
            charge.reference,
            method_token,
            charge.amount_minor,
            charge.currency,
            charge.status,
            charge.decline_code,
        )
        fault_after_charge(method, created=created, timeout=timeout)
        # One step: the reference arrives with the reply (a lost reply brings none).
        if on_reference is not None:
            on_reference(charge.reference)
        return charge_result(charge)

    @staticmethod
    def _charge_alone(
        method, *, idempotency_key, customer, metadata, timeout, params, look_first
    ) -> tuple[SandboxCharge, bool]:
        """The charge for the key and whether this call made it. A fault card's first call may fail
        before any charge, so its key is looked up first; so is one the writer found taken."""
        if look_first:
            existing = SandboxCharge.objects.filter(idempotency_key=idempotency_key).first()
            if existing is not None:
                return replay_charge(existing, **params), False
            fault_before_charge(method, idempotency_key=idempotency_key, timeout=timeout)
        # A key repeated meanwhile is found when the insert collides.
        return charge_record(
            method, idempotency_key=idempotency_key, customer=customer, metadata=metadata, **params
        )

    def retrieve(self, reference: str) -> ChargeResult | None:
        network_delay()
        if not reference:
            raise GatewayError("Retrieve a charge by its reference.")
        with database_turn():
            charge = SandboxCharge.objects.filter(reference=reference).first()
            return charge_result(clear_if_due(charge)) if charge else None

    def parse_event(self, body: bytes, headers) -> GatewayEvent:
        return sandbox_events.event_parse(body, headers)

    def cancel(self, reference: str) -> ChargeResult | None:
        """No sandbox charge ever waits for the customer (none is ``requires_action``): each is
        final or clearing on its own, so cancelling changes nothing and reports it as it is."""
        return self.retrieve(reference)

    def find(
        self, idempotency_key: str, *, customer: str = "", since: datetime.datetime | None = None
    ) -> ChargeResult | None:
        # The sandbox keeps every key, so neither hint is needed to find it.
        network_delay()
        if not idempotency_key:
            raise GatewayError("Find a charge by its idempotency key.")
        with database_turn():
            charge = SandboxCharge.objects.filter(idempotency_key=idempotency_key).first()
            return charge_result(clear_if_due(charge)) if charge else None

    def list_charges(
        self, *, since: datetime.datetime | None = None, cursor: str = "", limit: int = 100
    ) -> ChargePage:
        network_delay()
        if not 1 <= limit <= 10_000:
            raise GatewayError("limit must be 1 to 10000.")
        charges = SandboxCharge.objects.order_by("created_at", "pk")
        if since is not None:
            charges = charges.filter(created_at__gte=since)
        if cursor:
            charges = charges.filter(after_cursor(cursor))
        page = list(charges[: limit + 1])
        more = len(page) > limit
        page = [clear_if_due(charge) for charge in page[:limit]]
        return ChargePage(
            entries=[charge.as_ledger_entry() for charge in page],
            next_cursor=charge_cursor(page[-1]) if more else "",
        )

    def refund(
        self, *, reference: str, idempotency_key: str, amount_minor: int | None = None
    ) -> RefundResult:
        network_delay()
        if amount_minor is not None:
            check_amount(amount_minor)
        check_idempotency_key(idempotency_key)
        charge = SandboxCharge.objects.filter(reference=reference).first()
        if charge is None:
            raise GatewayError(f"No charge {reference!r}.")
        clear_if_due(charge)
        try:
            refund = refund_record(charge=charge, idempotency_key=idempotency_key, amount_minor=amount_minor)
        except IntegrityError:
            refund = SandboxRefund.objects.select_related("charge").get(idempotency_key=idempotency_key)
        if refund.charge.reference != reference or amount_minor not in (None, refund.amount_minor):
            raise IdempotencyConflict(
                f"Idempotency key {idempotency_key!r} was first used with other parameters."
            )
        logger.info(
            "Refund %s of %s: %s %s", refund.reference, reference, refund.amount_minor, refund.currency
        )
        return refund_result(refund, charge_reference=reference)

    def refunds(self, reference: str) -> list[RefundResult]:
        network_delay()
        return [
            refund_result(refund, charge_reference=reference)
            for refund in SandboxRefund.objects.filter(charge__reference=reference).order_by("pk")
        ]
