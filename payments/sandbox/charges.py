"""The sandbox's ledger of charges and refunds: what a call for a token gives (by the test number it
was made from), its faults, its replays by idempotency key, and the rows it writes, one call at a
time or many together (``record_charges``, which the gateway's group writer runs).

Every write commits in the "sandbox" database on its own, as a remote processor's would: nothing the
caller rolls back can erase a charge.
"""

import contextlib
import dataclasses
import datetime
import logging
import secrets
import time
from collections.abc import Mapping

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from core.bulk import insert_rows
from payments.gateways.base import (
    ChargeResult,
    ChargeStatus,
    GatewayError,
    GatewayUnavailable,
    IdempotencyConflict,
    RefundResult,
)

from .models import SandboxCharge, SandboxFault, SandboxRefund, SandboxToken
from .numbers import (
    BEHAVIOURS,
    DECLINE_MESSAGES,
    ONCE_PER_KEY,
    REPLY_LOST,
    SLOW_REPLY,
    TIMEOUT_BEFORE_CHARGE,
)
from .routers import SANDBOX_DB

logger = logging.getLogger("payments.sandbox")

Kind = SandboxToken.Kind
Status = SandboxCharge.Status

DEBIT_CURRENCY = {Kind.SEPA_DEBIT: "EUR", Kind.ACH_DEBIT: "USD"}


def check_amount(amount_minor: int) -> None:
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor <= 0:
        raise GatewayError("amount_minor must be a positive whole number of minor units.")


def check_idempotency_key(idempotency_key: str) -> None:
    if not idempotency_key or len(idempotency_key) > 255:
        raise GatewayError("idempotency_key must be 1 to 255 characters.")


def check_currency(currency: str) -> str:
    if not (isinstance(currency, str) and len(currency) == 3 and currency.isascii() and currency.isalpha()):
        raise GatewayError("currency must be an ISO 4217 code such as EUR.")
    return currency.upper()


def charge_result(charge: SandboxCharge) -> ChargeResult:
    return ChargeResult(
        status=ChargeStatus(charge.status),
        reference=charge.reference,
        idempotency_key=charge.idempotency_key,
        amount_minor=charge.amount_minor,
        currency=charge.currency,
        decline_code=charge.decline_code,
        message=str(DECLINE_MESSAGES.get(charge.decline_code, "")),
    )


def charge_outcome(
    method: SandboxToken | None, *, currency: str
) -> tuple[str, str, datetime.datetime | None]:
    """(status, decline code, clears at) of a new charge."""
    if method is None:
        return Status.FAILED, "incorrect_number", None
    if DEBIT_CURRENCY.get(method.kind, currency) != currency:
        return Status.FAILED, "currency_not_supported", None
    behaviour = BEHAVIOURS[method.behaviour]
    if method.kind != Kind.CARD:
        clearing = datetime.timedelta(seconds=getattr(settings, "SANDBOX_CLEARING_SECONDS", 0))
        return Status.PENDING, "", timezone.now() + clearing + behaviour.extra_clearing
    if behaviour.decline_code:
        return Status.FAILED, behaviour.decline_code, None
    return Status.SUCCEEDED, "", None


_tokens: dict[str, SandboxToken] = {}


def find_token(token: str) -> SandboxToken | None:
    """The token's record. Its kind and behaviour never change once made, so it is kept (a few
    thousand at most) instead of read again for every charge."""
    found = _tokens.get(token)
    if found is None:
        found = SandboxToken.objects.filter(token=token).first()
        if found is not None:
            if len(_tokens) >= 10_000:
                _tokens.clear()
            _tokens[token] = found
    return found


def clear_if_due(charge: SandboxCharge) -> SandboxCharge:
    """A pending bank debit whose clearing time has passed takes its final state."""
    if charge.status != Status.PENDING or charge.clears_at is None or charge.clears_at > timezone.now():
        return charge
    decline_code = BEHAVIOURS[SandboxToken.objects.get(token=charge.token).behaviour].decline_code
    with transaction.atomic(using=SANDBOX_DB):
        # Conditional on still pending, so two lookups racing settle it once.
        SandboxCharge.objects.filter(pk=charge.pk, status=Status.PENDING).update(
            status=Status.FAILED if decline_code else Status.SUCCEEDED, decline_code=decline_code
        )
    charge.refresh_from_db()
    logger.info(
        "Bank debit %s on %s cleared: %s %s", charge.reference, charge.token, charge.status, decline_code
    )
    return charge


def replay_charge(charge: SandboxCharge, *, token: str, amount_minor: int, currency: str) -> SandboxCharge:
    if (charge.token, charge.amount_minor, charge.currency) != (token, amount_minor, currency):
        raise IdempotencyConflict(
            f"Idempotency key {charge.idempotency_key!r} was first used with other parameters."
        )
    return clear_if_due(charge)


def fault_before_charge(method: SandboxToken | None, *, idempotency_key: str, timeout: float) -> None:
    if method is None or method.behaviour not in ONCE_PER_KEY:
        return
    try:
        # The unique key makes "only the first call" hold across processes: one insert wins.
        with transaction.atomic(using=SANDBOX_DB):
            SandboxFault.objects.create(idempotency_key=idempotency_key, behaviour=method.behaviour)
    except IntegrityError:
        return
    logger.warning("Fault card %s: %s for key %s", method.token, method.behaviour, idempotency_key)
    if method.behaviour == TIMEOUT_BEFORE_CHARGE:
        raise GatewayUnavailable(f"Timed out after {timeout:g} s; no charge was made.")
    raise GatewayUnavailable("502 Bad Gateway")


def _new_charge(
    method: SandboxToken | None,
    *,
    idempotency_key: str,
    customer: str,
    metadata: Mapping[str, str],
    token: str,
    amount_minor: int,
    currency: str,
) -> SandboxCharge:
    """The unsaved charge a call for ``method`` makes, with the outcome its behaviour gives."""
    status, decline_code, clears_at = charge_outcome(method, currency=currency)
    return SandboxCharge(
        reference=f"ch_sandbox_{secrets.token_hex(12)}",
        idempotency_key=idempotency_key,
        status=status,
        decline_code=decline_code,
        clears_at=clears_at,
        customer=customer,
        metadata={str(k): str(v) for k, v in metadata.items()},
        token=token,
        amount_minor=amount_minor,
        currency=currency,
    )


def charge_record(
    method: SandboxToken | None,
    *,
    idempotency_key: str,
    customer: str,
    metadata: Mapping[str, str],
    token: str,
    amount_minor: int,
    currency: str,
) -> tuple[SandboxCharge, bool]:
    """The charge for this key, and whether this call made it."""
    params = {"token": token, "amount_minor": amount_minor, "currency": currency}
    new = _new_charge(method, idempotency_key=idempotency_key, customer=customer, metadata=metadata, **params)
    # On its own, one INSERT is one transaction; inside a caller's transaction (tests), a savepoint
    # keeps a collision from spoiling it.
    in_transaction = transaction.get_connection(SANDBOX_DB).in_atomic_block
    try:
        with transaction.atomic(using=SANDBOX_DB) if in_transaction else contextlib.nullcontext():
            [charge] = insert_rows([new])
    except IntegrityError:
        # Another call with this key inserted first: its charge is the one, ours never happened.
        return replay_charge(SandboxCharge.objects.get(idempotency_key=idempotency_key), **params), False
    return charge, True


@dataclasses.dataclass(frozen=True)
class ChargeRequest:
    token: str
    amount_minor: int
    currency: str
    idempotency_key: str
    customer: str
    metadata: dict[str, str]


def is_fault_card(method: SandboxToken | None) -> bool:
    return method is not None and method.behaviour in ONCE_PER_KEY


def record_charges(requests: list[ChargeRequest]) -> list[tuple[SandboxToken | None, SandboxCharge | None]]:
    """Write the charges of ``requests`` (on the ledger writer's thread), in one statement: for
    each, its token's record and the charge this call made. There is no charge for a fault card's
    request (its first call may fail before any charge: the caller takes the way of one call at a
    time) nor for a key already in the ledger (the caller replays that charge)."""
    # This group's tokens from the cache, the others in one query (the cache may be cleared meanwhile
    # by another thread: the group keeps its own).
    methods = {token: _tokens.get(token) for token in {request.token for request in requests}}
    unknown = [token for token, method in methods.items() if method is None]
    if unknown:
        fetched = {method.token: method for method in SandboxToken.objects.filter(token__in=unknown)}
        methods.update(fetched)
        if len(_tokens) + len(fetched) > 10_000:
            _tokens.clear()
        _tokens.update(fetched)
    found, rows, keys = [], [], set()
    for request in requests:
        method = methods[request.token]
        if is_fault_card(method) or request.idempotency_key in keys:
            found.append((method, None))
            continue
        keys.add(request.idempotency_key)
        charge = _new_charge(method, **dataclasses.asdict(request))
        rows.append(charge)
        found.append((method, charge))
    try:
        insert_rows(rows)  # one statement: all of them or none
    except IntegrityError:
        # A key already in the ledger (a replay racing its first call, from another process): each
        # on its own, and those that collide were not made here.
        for charge in rows:
            try:
                insert_rows([charge])
            except IntegrityError:
                charge.pk = None
    return [(method, charge if charge is not None and charge.pk else None) for method, charge in found]


def fault_after_charge(method: SandboxToken | None, *, created: bool, timeout: float) -> None:
    behaviour = method.behaviour if method else ""
    if behaviour == REPLY_LOST and created:
        raise GatewayUnavailable("Connection reset before the reply arrived; the charge may have happened.")
    if behaviour == SLOW_REPLY:
        delay = float(getattr(settings, "SANDBOX_SLOW_REPLY_SECONDS", 2.0))
        time.sleep(min(delay, timeout))
        if timeout < delay:
            raise GatewayUnavailable(f"Timed out after {timeout:g} s; the charge may have happened.")


def refund_record(*, charge: SandboxCharge, idempotency_key: str, amount_minor: int | None) -> SandboxRefund:
    with transaction.atomic(using=SANDBOX_DB):
        # The charge row is the lock: concurrent refunds of one charge cannot overspend it.
        charge = SandboxCharge.objects.select_for_update().get(pk=charge.pk)
        existing = SandboxRefund.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing
        if charge.status != Status.SUCCEEDED:
            raise GatewayError(f"Charge {charge.reference} is {charge.status}; only a succeeded one refunds.")
        remaining = charge.amount_minor - (charge.refunds.aggregate(total=Sum("amount_minor"))["total"] or 0)
        amount = remaining if amount_minor is None else amount_minor
        if not 0 < amount <= remaining:
            raise GatewayError(
                f"Cannot refund {amount} of {charge.reference}: {remaining} is left to refund."
            )
        return SandboxRefund.objects.create(
            reference=f"re_sandbox_{secrets.token_hex(12)}",
            idempotency_key=idempotency_key,
            charge=charge,
            amount_minor=amount,
            currency=charge.currency,
        )


def refund_result(refund: SandboxRefund, *, charge_reference: str) -> RefundResult:
    return RefundResult(
        reference=refund.reference,
        charge_reference=charge_reference,
        amount_minor=refund.amount_minor,
        currency=refund.currency,
        idempotency_key=refund.idempotency_key,
    )


def charge_cursor(charge: SandboxCharge) -> str:
    return f"{charge.created_at.isoformat()}|{charge.pk}"


def after_cursor(cursor: str) -> Q:
    """Charges after the one ``cursor`` names, in ledger order (created_at, then pk)."""
    try:
        created_at, pk = cursor.rsplit("|", 1)
        created_at, pk = datetime.datetime.fromisoformat(created_at), int(pk)
    except ValueError:
        raise GatewayError(f"Not a cursor from list_charges: {cursor!r}.") from None
    return Q(created_at__gt=created_at) | Q(created_at=created_at, pk__gt=pk)
