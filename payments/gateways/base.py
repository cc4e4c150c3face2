"""The one small interface every payment gateway implements.

Callers never hold a database transaction open across these calls: a gateway is a remote system
that answers slowly, sometimes not at all.

A method is saved in two steps, so that a processor can collect the number in the customer's browser
and it never reaches our server: ``start_setup`` returns what the page needs (a SetupIntent's client
secret and the publishable key, for a processor with browser elements), the browser hands the details
to the processor, and ``finish_setup`` turns the reference the browser got back into the
``TokenizedMethod`` we keep. Only the sandbox also takes numbers on the server, through methods of its
own that are not part of this interface.
"""

import abc
import contextlib
import dataclasses
import datetime
import enum
from collections.abc import Callable, Mapping


class ChargeStatus(enum.StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # a definitive decline, with a decline code
    PENDING = "pending"  # a bank debit still clearing
    REQUIRES_ACTION = "requires_action"  # the customer must authenticate on-session (3-D Secure …)


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
class SetupSession:
    """What the add-method page needs from the gateway to collect a method.

    Empty ``client_secret``: nothing is collected in the browser, and the page shows the server-side
    form (the sandbox). Otherwise the page loads the processor's script with ``publishable_key`` and
    confirms ``client_secret`` (a SetupIntent, for Stripe); ``reference`` names that setup.
    """

    kind: str
    client_secret: str = ""
    publishable_key: str = ""
    reference: str = ""

    @property
    def in_browser(self) -> bool:
        return bool(self.client_secret)


@dataclasses.dataclass(frozen=True)
class ChargeResult:
    status: ChargeStatus
    reference: str
    idempotency_key: str
    amount_minor: int
    currency: str
    decline_code: str = ""
    message: str = ""
    # REQUIRES_ACTION only: where the customer completes authentication (a client secret, for Stripe).
    action_secret: str = ""


@dataclasses.dataclass(frozen=True)
class LedgerEntry:
    """One charge as the gateway itself recorded it (for reconciliation).

    ``idempotency_key`` is empty when the processor does not report it; ``attempt_key`` is the key of
    our attempt either way, from the metadata the charge was made with.
    """

    reference: str
    idempotency_key: str
    token: str
    amount_minor: int
    currency: str
    status: ChargeStatus
    decline_code: str
    created_at: datetime.datetime
    customer: str = ""
    metadata: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def attempt_key(self) -> str:
        return self.metadata.get("attempt") or self.idempotency_key


@dataclasses.dataclass(frozen=True)
class ChargePage:
    """One page of the gateway's charges, in the gateway's own order (see ``Gateway.list_charges``).
    ``next_cursor`` is empty on the last page; otherwise it is opaque, and passed back as ``cursor``
    gives the page after this one."""

    entries: list[LedgerEntry]
    next_cursor: str = ""


@dataclasses.dataclass(frozen=True)
class RefundResult:
    """A refund as the gateway has it. ``idempotency_key`` is the key it was made with, when the
    gateway reports it (Stripe: from the refund's metadata); empty for one made at the gateway."""

    reference: str
    charge_reference: str
    amount_minor: int
    currency: str
    succeeded: bool = True  # False: refused or failed at the processor (nothing given back)
    idempotency_key: str = ""


@dataclasses.dataclass(frozen=True)
class SavedMethod:
    """A saved method as the gateway has it now: what we may keep, and the customer it is saved to
    (empty once it was detached)."""

    method: "TokenizedMethod"
    customer: str = ""


@dataclasses.dataclass(frozen=True)
class GatewayEvent:
    """One event as the gateway reports it. ``status`` and ``decline_code`` are what the event says
    at the time it was sent, not necessarily what the charge is now."""

    id: str  # unique per gateway; a redelivery of the same event keeps it
    type: str  # e.g. "charge.succeeded", "charge.failed"
    created: datetime.datetime
    reference: str  # the charge the event is about
    idempotency_key: str = ""  # the charge's key, when the gateway reports it
    status: str = ""
    decline_code: str = ""
    payload: Mapping = dataclasses.field(default_factory=dict, repr=False, compare=False)


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

    The charge may or may not have happened; resolve it later with ``retrieve`` / ``find`` or by
    repeating the call with the same idempotency key, never with a new key.
    """


class IdempotencyConflict(GatewayError):
    """The idempotency key was used before with different parameters."""


OnReference = Callable[[str], None]


class WebhookSignatureError(GatewayError):
    """The body is not a genuine, fresh event from the gateway: no signature, a wrong one, a stale
    timestamp or a body that cannot be read. Nothing of it may be stored or applied."""


class Gateway(abc.ABC):
    name: str
    # How long the processor keeps an idempotency key after its first request (None: for ever). A call
    # repeated after that is a new charge, not a replay: an attempt that old is resolved by lookup only.
    idempotency_key_lifetime: datetime.timedelta | None = None

    def calls_together(self) -> contextlib.AbstractContextManager:
        """Open while calls are made from many threads at once (the settlement's call pool): the
        gateway may share among them what each call would otherwise hold on its own. Nested uses
        count; the last to close releases what was shared. By default nothing is."""
        return contextlib.nullcontext()

    @abc.abstractmethod
    def customer_create(self, *, account_id: int, name: str = "", email: str = "") -> str:
        """Create the processor's customer for one of our accounts; returns its reference.

        Called once per account and gateway (see payments.customers): methods are saved to it and
        charges are made for it."""

    @abc.abstractmethod
    def start_setup(self, *, account, kind: str, customer: str) -> SetupSession:
        """Begin saving a method of ``kind`` for ``customer`` (the account's customer reference):
        what the page needs to collect it."""

    @abc.abstractmethod
    def finish_setup(self, *, account, kind: str, customer: str, reference: str) -> TokenizedMethod:
        """The method the customer's browser saved (``reference``: what the processor gave it back,
        e.g. a PaymentMethod or SetupIntent id), attached to ``customer``, as we may keep it.
        Raises InvalidPaymentDetails if it is not a usable method of ``kind``."""

    @abc.abstractmethod
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
        """Charge a saved method of ``customer`` off-session.

        ``metadata`` goes with the charge to the processor (our invoice number and attempt key, so
        that a charge can be found without its reference). The same key with the same parameters
        returns the first result again and never charges twice; the same key with other parameters
        raises IdempotencyConflict. Raises GatewayUnavailable when the outcome is unknown.

        ``on_reference``, if given, is called with the processor's reference for the charge as soon
        as it exists, before the outcome is known (a processor that creates the payment first and
        confirms it after calls it in between; one that answers in one step calls it just before
        returning). It may be called even if the call then raises GatewayUnavailable: the caller
        records the reference so the charge can be retrieved later. It runs on the calling thread
        and must not raise."""

    @abc.abstractmethod
    def retrieve(self, reference: str) -> ChargeResult | None:
        """The current state of the charge with this processor reference; None if there is none.
        A pending bank debit that has since cleared or failed reports its final state."""

    @abc.abstractmethod
    def find(
        self, idempotency_key: str, *, customer: str = "", since: datetime.datetime | None = None
    ) -> ChargeResult | None:
        """The charge made with this idempotency key (our attempt key), or None if the processor has
        none. ``customer`` and ``since`` (when the attempt was recorded) narrow the search for a
        processor that can only list charges and match their metadata."""

    @abc.abstractmethod
    def list_charges(
        self, *, since: datetime.datetime | None = None, cursor: str = "", limit: int = 100
    ) -> ChargePage:
        """One page of at most ``limit`` charges made at or after ``since``, starting after ``cursor``
        (a page's ``next_cursor``; empty for the first page). Pending bank debits that have cleared
        report their final state.

        The pages are in the processor's own order (the sandbox lists oldest first, Stripe newest
        first): callers must not rely on it. Every charge made at or after ``since`` before the first
        page was read is on exactly one page; a charge made while the pages are read may or may not
        be."""

    @abc.abstractmethod
    def refund(
        self, *, reference: str, idempotency_key: str, amount_minor: int | None = None
    ) -> RefundResult:
        """Refund a succeeded charge, wholly or in part."""

    @abc.abstractmethod
    def refunds(self, reference: str) -> list[RefundResult]:
        """Every refund of the charge with this reference, as the gateway has them now (a refund
        made at the processor itself included)."""

    @abc.abstractmethod
    def cancel(self, reference: str) -> ChargeResult | None:
        """Cancel a charge that waits for the customer (``requires_action``): it will never be
        charged. Returns the charge as it is afterwards (``FAILED`` with decline code ``canceled``),
        or as it was when it can no longer be cancelled (it succeeded meanwhile: nothing changes);
        None if there is no such charge."""

    @abc.abstractmethod
    def saved_method(self, token: str) -> SavedMethod | None:
        """A saved method read again from the gateway (its expiry and last 4 may have been renewed
        by the card networks' updater); None if the gateway has no such method."""

    @abc.abstractmethod
    def parse_event(self, body: bytes, headers: Mapping[str, str]) -> GatewayEvent:
        """Verify the signature in ``headers`` over ``body`` and return the event (``/webhooks/<name>/``);
        raises WebhookSignatureError when it is not a genuine, fresh event. Whoever applies it reads
        the charge again rather than trusting the event: events come late, twice or out of order."""
