"""The sandbox gateway: a payment processor embedded in the project for development, demos, tests and
benchmarks, which behaves like a remote one.

Its ledger lives in the "sandbox" database and every write commits there on its own, so nothing the
caller rolls back can erase a charge. Outcomes follow the test number a token was made from: Stripe's
test cards, plus fault cards, IBANs and US bank accounts of our own (docs/sandbox.md lists them all).

Settings: SANDBOX_LATENCY_MS (added to every call), SANDBOX_CLEARING_SECONDS (how long a bank debit
stays pending) and SANDBOX_SLOW_REPLY_SECONDS (how slow the slow card is).
"""

import contextlib
import dataclasses
import datetime
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Iterator

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy

from core.bulk import insert_rows
from payments.sandbox import events as sandbox_events
from payments.sandbox.models import SandboxCharge, SandboxFault, SandboxRefund, SandboxToken
from payments.sandbox.routers import SANDBOX_DB

from . import validation
from .base import (
    ChargeResult,
    ChargeStatus,
    Gateway,
    GatewayError,
    GatewayUnavailable,
    IdempotencyConflict,
    InvalidPaymentDetails,
    LedgerEntry,
    RefundResult,
    TokenizedMethod,
)
from .events import GatewayEvent

logger = logging.getLogger("payments.sandbox")

Kind = SandboxToken.Kind
Status = SandboxCharge.Status


@dataclasses.dataclass(frozen=True)
class Behaviour:
    """How a charge ends: an empty decline code means it succeeds."""

    decline_code: str = ""
    # Bank debits only: how much longer than SANDBOX_CLEARING_SECONDS the debit stays pending.
    extra_clearing: datetime.timedelta = datetime.timedelta(0)


# Faults. The first two strike only the first call for an idempotency key, before any charge.
REPLY_LOST = "reply_lost"
TIMEOUT_BEFORE_CHARGE = "timeout_before_charge"
BAD_GATEWAY_ONCE = "bad_gateway_once"
SLOW_REPLY = "slow_reply"
ONCE_PER_KEY = frozenset({TIMEOUT_BEFORE_CHARGE, BAD_GATEWAY_ONCE})

BEHAVIOURS = {
    "succeeds": Behaviour(),
    "generic_decline": Behaviour("generic_decline"),
    "insufficient_funds": Behaviour("insufficient_funds"),
    "lost_card": Behaviour("lost_card"),
    "stolen_card": Behaviour("stolen_card"),
    "expired_card": Behaviour("expired_card"),
    "processing_error": Behaviour("processing_error"),
    "attached_then_declined": Behaviour("generic_decline"),
    REPLY_LOST: Behaviour(),
    TIMEOUT_BEFORE_CHARGE: Behaviour(),
    BAD_GATEWAY_ONCE: Behaviour(),
    SLOW_REPLY: Behaviour(),
    "debit_succeeds": Behaviour(),
    "debit_insufficient_funds": Behaviour("insufficient_funds"),
    "debit_account_closed": Behaviour("account_closed"),
    # Like Stripe's "fails after three minutes" accounts: long enough to watch a debit sit pending.
    "debit_fails_late": Behaviour("insufficient_funds", extra_clearing=datetime.timedelta(minutes=3)),
}

# Any other Luhn-valid card succeeds and any other valid bank account clears, as in Stripe's test mode.
TEST_CARDS = {
    "4242424242424242": "succeeds",
    "5555555555554444": "succeeds",
    "4000000000000002": "generic_decline",
    "4000000000009995": "insufficient_funds",
    "4000000000009987": "lost_card",
    "4000000000009979": "stolen_card",
    "4000000000000069": "expired_card",
    "4000000000000119": "processing_error",
    "4000000000000341": "attached_then_declined",
    "4000000000008013": REPLY_LOST,
    "4000000000008021": TIMEOUT_BEFORE_CHARGE,
    "4000000000008039": BAD_GATEWAY_ONCE,
    "4000000000008047": SLOW_REPLY,
}
TEST_IBANS = {
    "DE89370400440532013000": "debit_succeeds",
    "DE62370400440532013001": "debit_insufficient_funds",
    "DE35370400440532013002": "debit_account_closed",
    "DE08370400440532013003": "debit_fails_late",
}
# With routing number 110000000, or any other valid one.
TEST_US_ACCOUNTS = {
    "000123456789": "debit_succeeds",
    "000111111116": "debit_insufficient_funds",
    "000111111113": "debit_account_closed",
    "000444444440": "debit_fails_late",
}

DEBIT_CURRENCY = {Kind.SEPA_DEBIT: "EUR", Kind.ACH_DEBIT: "USD"}

DECLINE_MESSAGES = {
    "generic_decline": gettext_lazy("The payment was declined."),
    "insufficient_funds": gettext_lazy("The account has insufficient funds."),
    "lost_card": gettext_lazy("The card has been reported lost."),
    "stolen_card": gettext_lazy("The card has been reported stolen."),
    "expired_card": gettext_lazy("The card has expired."),
    "processing_error": gettext_lazy("An error occurred while processing the payment."),
    "account_closed": gettext_lazy("The bank account has been closed."),
    "incorrect_number": gettext_lazy("The gateway does not know this payment method."),
    "currency_not_supported": gettext_lazy("This payment method cannot pay in this currency."),
}


def _network_delay() -> None:
    latency_ms = getattr(settings, "SANDBOX_LATENCY_MS", 0)
    if latency_ms > 0:
        time.sleep(latency_ms / 1000)


def _check_amount(amount_minor: int) -> None:
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor <= 0:
        raise GatewayError("amount_minor must be a positive whole number of minor units.")


def _check_idempotency_key(idempotency_key: str) -> None:
    if not idempotency_key or len(idempotency_key) > 255:
        raise GatewayError("idempotency_key must be 1 to 255 characters.")


def _check_currency(currency: str) -> str:
    if not (isinstance(currency, str) and len(currency) == 3 and currency.isascii() and currency.isalpha()):
        raise GatewayError("currency must be an ISO 4217 code such as EUR.")
    return currency.upper()


def _tokenized(*, kind: str, behaviour: str, secret: str, last4: str, **display) -> TokenizedMethod:
    """Keep what the token behaves like, never ``secret`` (the number); its HMAC is the fingerprint."""
    token = f"tok_sandbox_{secrets.token_hex(12)}"
    with transaction.atomic(using=SANDBOX_DB):
        SandboxToken.objects.create(token=token, kind=kind, behaviour=behaviour)
    logger.info("Tokenised %s ending %s as %s", kind, last4, token)
    return TokenizedMethod(
        kind=kind,
        token=token,
        fingerprint=hmac.new(settings.SECRET_KEY.encode(), secret.encode(), hashlib.sha256).hexdigest()[:32],
        last4=last4,
        **display,
    )


def _refused(kind: str, error: InvalidPaymentDetails) -> InvalidPaymentDetails:
    logger.info("Refused %s details: %s (%s)", kind, error.code, error.field)
    return error


def _result(charge: SandboxCharge) -> ChargeResult:
    return ChargeResult(
        status=ChargeStatus(charge.status),
        reference=charge.reference,
        idempotency_key=charge.idempotency_key,
        amount_minor=charge.amount_minor,
        currency=charge.currency,
        decline_code=charge.decline_code,
        message=str(DECLINE_MESSAGES.get(charge.decline_code, "")),
    )


def _outcome(method: SandboxToken | None, *, currency: str) -> tuple[str, str, datetime.datetime | None]:
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


def _token(token: str) -> SandboxToken | None:
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


def _clear_if_due(charge: SandboxCharge) -> SandboxCharge:
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


def _replay(charge: SandboxCharge, *, token: str, amount_minor: int, currency: str) -> SandboxCharge:
    if (charge.token, charge.amount_minor, charge.currency) != (token, amount_minor, currency):
        raise IdempotencyConflict(
            f"Idempotency key {charge.idempotency_key!r} was first used with other parameters."
        )
    return _clear_if_due(charge)


def _fault_before_charge(method: SandboxToken | None, *, idempotency_key: str, timeout: float) -> None:
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


def _charge_record(
    method: SandboxToken | None, *, idempotency_key: str, token: str, amount_minor: int, currency: str
) -> tuple[SandboxCharge, bool]:
    """The charge for this key, and whether this call made it."""
    status, decline_code, clears_at = _outcome(method, currency=currency)
    params = {"token": token, "amount_minor": amount_minor, "currency": currency}
    # On its own, one INSERT is one transaction; inside a caller's transaction (tests), a savepoint
    # keeps a collision from spoiling it.
    in_transaction = transaction.get_connection(SANDBOX_DB).in_atomic_block
    try:
        with transaction.atomic(using=SANDBOX_DB) if in_transaction else contextlib.nullcontext():
            [charge] = insert_rows(
                [
                    SandboxCharge(
                        reference=f"ch_sandbox_{secrets.token_hex(12)}",
                        idempotency_key=idempotency_key,
                        status=status,
                        decline_code=decline_code,
                        clears_at=clears_at,
                        **params,
                    )
                ]
            )
    except IntegrityError:
        # Another call with this key inserted first: its charge is the one, ours never happened.
        return _replay(SandboxCharge.objects.get(idempotency_key=idempotency_key), **params), False
    return charge, True


def _fault_after_charge(method: SandboxToken | None, *, created: bool, timeout: float) -> None:
    behaviour = method.behaviour if method else ""
    if behaviour == REPLY_LOST and created:
        raise GatewayUnavailable("Connection reset before the reply arrived; the charge may have happened.")
    if behaviour == SLOW_REPLY:
        delay = float(getattr(settings, "SANDBOX_SLOW_REPLY_SECONDS", 2.0))
        time.sleep(min(delay, timeout))
        if timeout < delay:
            raise GatewayUnavailable(f"Timed out after {timeout:g} s; the charge may have happened.")


def _refund_record(*, charge: SandboxCharge, idempotency_key: str, amount_minor: int | None) -> SandboxRefund:
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


class SandboxGateway(Gateway):
    name = "sandbox"

    def tokenize_card(self, *, number: str, exp_month: int, exp_year: int, cvc: str) -> TokenizedMethod:
        _network_delay()
        try:
            digits = validation.clean_card_number(number)
            exp_month, exp_year = validation.clean_card_expiry(exp_month=exp_month, exp_year=exp_year)
            validation.clean_cvc(cvc)
        except InvalidPaymentDetails as error:
            raise _refused(Kind.CARD, error) from None
        return _tokenized(
            kind=Kind.CARD,
            behaviour=TEST_CARDS.get(digits, "succeeds"),
            secret=digits,
            last4=digits[-4:],
            brand=validation.card_brand(digits),
            exp_month=exp_month,
            exp_year=exp_year,
        )

    def tokenize_sepa_debit(self, *, iban: str, account_holder: str) -> TokenizedMethod:
        _network_delay()
        try:
            iban = validation.clean_iban(iban)
            validation.clean_account_holder(account_holder)
        except InvalidPaymentDetails as error:
            raise _refused(Kind.SEPA_DEBIT, error) from None
        return _tokenized(
            kind=Kind.SEPA_DEBIT,
            behaviour=TEST_IBANS.get(iban, "debit_succeeds"),
            secret=iban,
            last4=iban[-4:],
            bank_name="Sandbox Bank",
        )

    def tokenize_ach_debit(
        self, *, routing_number: str, account_number: str, account_holder: str
    ) -> TokenizedMethod:
        _network_delay()
        try:
            routing_number = validation.clean_routing_number(routing_number)
            account_number = validation.clean_account_number(account_number)
            validation.clean_account_holder(account_holder)
        except InvalidPaymentDetails as error:
            raise _refused(Kind.ACH_DEBIT, error) from None
        return _tokenized(
            kind=Kind.ACH_DEBIT,
            behaviour=TEST_US_ACCOUNTS.get(account_number, "debit_succeeds"),
            secret=f"{routing_number}:{account_number}",
            last4=account_number[-4:],
            bank_name="Sandbox Bank",
        )

    def charge(
        self,
        *,
        token: str,
        amount_minor: int,
        currency: str,
        idempotency_key: str,
        timeout: float,
    ) -> ChargeResult:
        _network_delay()
        _check_amount(amount_minor)
        _check_idempotency_key(idempotency_key)
        params = {"token": token, "amount_minor": amount_minor, "currency": _check_currency(currency)}
        method = _token(token)
        if method is not None and method.behaviour in ONCE_PER_KEY:
            charge = SandboxCharge.objects.filter(idempotency_key=idempotency_key).first()
            if charge is None:
                _fault_before_charge(method, idempotency_key=idempotency_key, timeout=timeout)
        else:
            charge = None  # a repeated key is found when the insert collides
        if charge is not None:
            charge, created = _replay(charge, **params), False
        else:
            charge, created = _charge_record(method, idempotency_key=idempotency_key, **params)
        logger.info(
            "Charge %s on %s for %s %s: %s %s",
            charge.reference,
            token,
            charge.amount_minor,
            charge.currency,
            charge.status,
            charge.decline_code,
        )
        _fault_after_charge(method, created=created, timeout=timeout)
        return _result(charge)

    def lookup(self, *, idempotency_key: str = "", reference: str = "") -> ChargeResult | None:
        _network_delay()
        if not (idempotency_key or reference):
            raise GatewayError("Look a charge up by its idempotency key or its reference.")
        wanted = {"idempotency_key": idempotency_key, "reference": reference}
        charge = SandboxCharge.objects.filter(
            **{field: value for field, value in wanted.items() if value}
        ).first()
        return _result(_clear_if_due(charge)) if charge else None

    def parse_event(self, body: bytes, headers) -> GatewayEvent:
        return sandbox_events.event_parse(body, headers)

    def refund(
        self, *, reference: str, idempotency_key: str, amount_minor: int | None = None
    ) -> RefundResult:
        _network_delay()
        if amount_minor is not None:
            _check_amount(amount_minor)
        _check_idempotency_key(idempotency_key)
        charge = SandboxCharge.objects.filter(reference=reference).first()
        if charge is None:
            raise GatewayError(f"No charge {reference!r}.")
        _clear_if_due(charge)
        try:
            refund = _refund_record(charge=charge, idempotency_key=idempotency_key, amount_minor=amount_minor)
        except IntegrityError:
            refund = SandboxRefund.objects.select_related("charge").get(idempotency_key=idempotency_key)
        if refund.charge.reference != reference or amount_minor not in (None, refund.amount_minor):
            raise IdempotencyConflict(
                f"Idempotency key {idempotency_key!r} was first used with other parameters."
            )
        logger.info(
            "Refund %s of %s: %s %s", refund.reference, reference, refund.amount_minor, refund.currency
        )
        return RefundResult(
            reference=refund.reference,
            charge_reference=reference,
            amount_minor=refund.amount_minor,
            currency=refund.currency,
        )

    def ledger(self) -> Iterator[LedgerEntry]:
        _network_delay()
        for charge in SandboxCharge.objects.filter(status=Status.PENDING, clears_at__lte=timezone.now()):
            _clear_if_due(charge)
        for charge in SandboxCharge.objects.order_by("created_at", "pk").iterator():
            yield charge.as_ledger_entry()

    def tokens_like(self, *, token: str, count: int) -> list[str]:
        """``count`` new tokens that charge exactly like ``token``: benchmark data for many methods
        without a tokenisation round trip each. Sandbox only; a real processor has no such call."""
        source = SandboxToken.objects.get(token=token)
        tokens = [f"tok_sandbox_{secrets.token_hex(12)}" for _ in range(count)]
        SandboxToken.objects.bulk_create(
            (SandboxToken(token=new, kind=source.kind, behaviour=source.behaviour) for new in tokens),
            batch_size=2000,
        )
        return tokens
