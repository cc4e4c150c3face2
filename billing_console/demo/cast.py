"""The demo's cast, as data: users, accounts, their charge orders and invoices.

An account has one charge order, so each settlement outcome gets an account of its own
(``DemoAccount.outcome`` says which; the README's "Demo accounts" table repeats it). Methods are
named by the sandbox's test numbers (docs/sandbox.md).
"""

import dataclasses

from accounts.models import Membership
from payments.models import PaymentMethod

DEMO_PASSWORD = "demo"
US_ROUTING_NUMBER = "110000000"


@dataclasses.dataclass(frozen=True)
class Card:
    number: str
    # An expired card cannot be tokenised: it is tokenised valid, then given a past expiry.
    expired: bool = False

    kind = PaymentMethod.Kind.CARD

    @property
    def last4(self) -> str:
        return self.number[-4:]


@dataclasses.dataclass(frozen=True)
class SepaAccount:
    iban: str

    kind = PaymentMethod.Kind.SEPA_DEBIT

    @property
    def last4(self) -> str:
        return self.iban[-4:]


@dataclasses.dataclass(frozen=True)
class UsBankAccount:
    account_number: str

    kind = PaymentMethod.Kind.ACH_DEBIT

    @property
    def last4(self) -> str:
        return self.account_number[-4:]


Method = Card | SepaAccount | UsBankAccount


@dataclasses.dataclass(frozen=True)
class OpenInvoice:
    amount_minor: int
    description: str
    currency: str = ""  # the account's currency unless given


@dataclasses.dataclass(frozen=True)
class DemoAccount:
    name: str
    slug: str  # invoice numbers are DEMO-<slug>-0001 …
    currency: str
    owner: str
    outcome: str
    order: tuple[Method, ...]  # the charge order, primary first
    open_invoices: tuple[OpenInvoice, ...]
    on_file: tuple[Method, ...] = ()  # kept but not in the charge order: never charged automatically
    members: tuple[tuple[str, str], ...] = ()  # (username, role) besides the owner
    # Paid invoices of the months before, charged to this method while it was the primary.
    history: tuple[int, ...] = ()
    history_method: Method | None = None


VISA = Card("4242424242424242")
MASTERCARD = Card("5555555555554444")
US_BANK = UsBankAccount("000123456789")

DEMO_ACCOUNTS = (
    DemoAccount(
        name="Acme Cloud (demo)",
        slug="ACME",
        currency="USD",
        owner="demo",
        members=(("viewer", Membership.Role.VIEWER),),
        outcome="Primary declined, backup pays: Visa 9995 is declined (insufficient_funds, soft), "
        "backup 1 Mastercard 4444 pays. A US bank account is on file but not in the charge order.",
        order=(Card("4000000000009995"), MASTERCARD),
        on_file=(US_BANK,),
        open_invoices=(OpenInvoice(128_450, "Compute and storage, this month"),),
        history=(119_900, 124_310, 121_075),
        history_method=MASTERCARD,
    ),
    DemoAccount(
        name="Acme Europe (demo)",
        slug="ACMEEU",
        currency="EUR",
        owner="demo",
        outcome="Currency skip: the EUR invoice skips the primary US bank account (ACH pays USD only); "
        "backup 1 Visa 4242 pays.",
        order=(US_BANK, VISA),
        on_file=(SepaAccount("DE89370400440532013000"),),
        open_invoices=(OpenInvoice(98_000, "Frankfurt region, this month"),),
    ),
    DemoAccount(
        name="Globex (demo)",
        slug="GLOBEX",
        currency="USD",
        owner="demo2",
        outcome="Primary pays: Visa 4242 pays the USD invoice and the JPY one (a card pays any currency).",
        order=(VISA, MASTERCARD),
        open_invoices=(
            OpenInvoice(54_320, "Analytics cluster, this month"),
            OpenInvoice(182_000, "Tokyo region, this month", currency="JPY"),
        ),
        history=(49_990, 51_230, 50_480),
        history_method=VISA,
    ),
    DemoAccount(
        name="Initech (demo)",
        slug="INITECH",
        currency="USD",
        owner="demo2",
        outcome="All declined: Visa 0341 and Visa 0002 both decline (generic_decline); the invoice and "
        "the account become past due and the invoice is retried on the BILLING_RETRY_DAYS schedule.",
        order=(Card("4000000000000341"), Card("4000000000000002")),
        open_invoices=(OpenInvoice(23_400, "Hosting, this month"),),
    ),
    DemoAccount(
        name="Umbrella (demo)",
        slug="UMBRELLA",
        currency="USD",
        owner="demo2",
        outcome="Hard decline: Visa 9987 is declined lost_card and blocked until the customer updates "
        "it; backup 1 Mastercard 4444 pays.",
        order=(Card("4000000000009987"), MASTERCARD),
        open_invoices=(OpenInvoice(310_000, "Dedicated hosts, this month"),),
    ),
    DemoAccount(
        name="Hooli (demo)",
        slug="HOOLI",
        currency="USD",
        owner="demo2",
        outcome="Expired card: the primary Visa 4242 expired last year and is skipped without a charge; "
        "backup 1 Mastercard 4444 pays.",
        order=(Card("4242424242424242", expired=True), MASTERCARD),
        open_invoices=(OpenInvoice(7_750, "Object storage, this month"),),
    ),
    DemoAccount(
        name="Soylent (demo)",
        slug="SOYLENT",
        currency="USD",
        owner="demo2",
        outcome="Pending bank debit: the primary US bank account 4440 stays pending, so nothing else is "
        "charged; a few minutes later it fails (insufficient_funds) and the next run charges backup 1 "
        "Visa 4242.",
        order=(UsBankAccount("000444444440"), VISA),
        open_invoices=(OpenInvoice(66_600, "Managed databases, this month"),),
    ),
)

DEMO_USERS = {
    # username: (email, is_staff)
    "demo": ("demo@example.com", False),
    "demo2": ("demo2@example.com", False),
    "viewer": ("viewer@example.com", False),
    "support": ("support@example.com", True),
}
