"""The one small interface every payment gateway implements.

Callers never hold a database transaction open across these calls: a gateway is a remote system
that answers slowly, sometimes not at all.
"""

import abc
import dataclasses
import datetime
import enum
from collections.abc import Iterator


class ChargeStatus(enum.StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # a definitive decline, with a decline code
    PENDING = "pending"  # a bank debit still clearing
    REQUIRES_ACTION = "requires_action"  # the customer must authenticate on-session


@dataclasses.dataclass(frozen=True)
class TokenizedMethod:
    """What comes back from tokenisation: everything we may keep, and nothing more."""

    kind: str  # "card", "sepa_debit" or "ach_debit"
    token: str
    fingerprint: str
    last4: str
    brand: str = ""
    exp_month: int | None = None
    exp_year: int | None = None
    bank_name: str = ""


@dataclasses.dataclass(frozen=True)
class ChargeResult:
    status: ChargeStatus
    reference: str
    idempotency_key: str
    amount_minor: int
    currency: str
    decline_code: str = ""
    message: str = ""


@dataclasses.dataclass(frozen=True)
class LedgerEntry:
    """One charge as the gateway itself recorded it (for reconciliation)."""

    reference: str
    idempotency_key: str
    token: str
    amount_minor: int
    currency: str
    status: ChargeStatus
    decline_code: str
    created_at: datetime.datetime


@dataclasses.dataclass(frozen=True)
class RefundResult:
    reference: str
    charge_reference: str
    amount_minor: int
    currency: str


class GatewayError(Exception):
    """Base class for everything a gateway raises."""


class InvalidPaymentDetails(GatewayError):
    """The details typed in cannot be tokenised. ``field`` names the form field to blame.

    The message never repeats the number that was typed.
    """

    def __init__(self, message: str, *, field: str = "number", code: str = "invalid"):
        super().__init__(message)
        self.field = field
        self.code = code
        self.message = message


class GatewayUnavailable(GatewayError):
    """Timeout, connection error or 5xx: the outcome of the call is unknown.

    The charge may or may not have happened; resolve it later with ``lookup`` or by repeating the
    call with the same idempotency key, never with a new key.
    """


class IdempotencyConflict(GatewayError):
    """The idempotency key was used before with different parameters."""


class Gateway(abc.ABC):
    name: str

    @abc.abstractmethod
    def tokenize_card(self, *, number: str, exp_month: int, exp_year: int, cvc: str) -> TokenizedMethod:
        """Validate (Luhn, expiry, CVC) and tokenise a card; the number is dropped at once."""

    @abc.abstractmethod
    def tokenize_sepa_debit(self, *, iban: str, account_holder: str) -> TokenizedMethod:
        """Validate (IBAN checksum) and tokenise a SEPA bank account."""

    @abc.abstractmethod
    def tokenize_ach_debit(
        self, *, routing_number: str, account_number: str, account_holder: str
    ) -> TokenizedMethod:
        """Validate (ABA routing checksum) and tokenise a US bank account."""

    @abc.abstractmethod
    def charge(
        self,
        *,
        token: str,
        amount_minor: int,
        currency: str,
        idempotency_key: str,
        timeout: float,
    ) -> ChargeResult:
        """Charge a token. The same key with the same parameters returns the first result again
        and never charges twice; the same key with other parameters raises IdempotencyConflict.
        Raises GatewayUnavailable when the outcome is unknown."""

    @abc.abstractmethod
    def lookup(self, *, idempotency_key: str = "", reference: str = "") -> ChargeResult | None:
        """The current state of a charge, by idempotency key or reference; None if there is none.
        A pending bank debit that has since cleared or failed reports its final state."""

    @abc.abstractmethod
    def refund(
        self, *, reference: str, idempotency_key: str, amount_minor: int | None = None
    ) -> RefundResult:
        """Refund a succeeded charge, wholly or in part."""

    @abc.abstractmethod
    def ledger(self) -> Iterator[LedgerEntry]:
        """Every charge the gateway has on record, oldest first."""
