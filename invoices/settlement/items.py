"""A claimed invoice on its way through the cascade, and the reads that prepare many at once."""

import copy
import dataclasses
import datetime

from invoices.models import Invoice, PaymentAttempt
from payments.models import GatewayCustomer, PaymentMethod

from .outcomes import InvoiceResult
from .plan import PlanStep, plan_inputs

NO_REPLY = object()  # an item with no gateway reply waiting to be recorded


@dataclasses.dataclass(frozen=True)
class NotCharged:
    """The gateway has no charge for an unresolved attempt, and never will: the attempt is closed
    (canceled) with this message, and the cascade goes on."""

    message: str


METHOD_REMOVED = NotCharged("Not charged: the method was removed before the gateway had it.")
KEY_FORGOTTEN = NotCharged(
    "Not charged: the gateway has no charge for it and no longer keeps its key, so it is not repeated."
)


class LeaseExpired(Exception):
    """This worker can no longer be sure it holds the invoice: it must not call the gateway."""


@dataclasses.dataclass(frozen=True)
class Lease:
    token: str
    owner: str


@dataclasses.dataclass
class Item:
    """One claimed invoice on its way through the cascade."""

    invoice: Invoice
    lease: Lease
    order: list[tuple[int | None, PaymentMethod]]  # the charge order (or the one chosen method)
    plan: list[PlanStep]  # steps not taken yet
    replays: list[PaymentAttempt]  # unresolved attempts still to resolve, oldest first
    next_sequence: int
    planned: bool = False  # replays done and the plan trimmed to what is left
    # Unresolved attempts of this round that turned out declined: the plan resumes after them.
    declined: set[int] = dataclasses.field(default_factory=set)
    last_declined: int | None = None
    skips: list[PlanStep] = dataclasses.field(default_factory=list)  # taken, not yet written
    failed: list[PaymentAttempt] = dataclasses.field(default_factory=list)  # declined in this cascade
    # The account's customer reference at each gateway (by gateway name), read with the item so that a
    # gateway call needs no query of its own.
    gateway_customers: dict[str, str] = dataclasses.field(default_factory=dict)
    attempt: PaymentAttempt | None = None  # the call to make, or in flight
    replay: bool = False  # ``attempt`` is an unresolved one being resolved
    reply: object = NO_REPLY  # what the gateway answered: a ChargeResult, or None for no answer
    error: Exception | None = None  # the call raised
    attempts: int = 0
    skipped: int = 0
    touched: bool = False  # a call was made for it in this run
    resumed: bool = False  # methods declined earlier in this round were left out of the plan
    result: InvoiceResult | None = None

    def wanted_method(self) -> int | None:
        """The method the next call would use (None: no call is next, or the reply is in)."""
        if self.reply is not NO_REPLY or self.error is not None:
            return None
        if self.replays:
            return self.replays[0].method_id
        for step in self.plan:
            if not step.skip_reason and step.method.pk not in self.declined:
                return step.method.pk
        return None

    def resume_plan(self) -> None:
        """Leave out what the replays found declined: resume after the last of them."""
        if self.last_declined is not None:
            ranks = [i for i, step in enumerate(self.plan) if step.method.pk == self.last_declined]
            if ranks:
                self.plan = self.plan[ranks[0] + 1 :]
        self.plan = [step for step in self.plan if step.method.pk not in self.declined]

    def snapshot(self) -> "Item":
        return dataclasses.replace(
            self,
            plan=list(self.plan),
            replays=list(self.replays),
            declined=set(self.declined),
            skips=list(self.skips),
            failed=list(self.failed),
            attempt=copy.copy(self.attempt),
        )

    def restore(self, snapshot: "Item") -> None:
        self.__dict__.update(snapshot.__dict__)


def items_prepare(
    invoices: list[Invoice],
    *,
    lease: Lease,
    as_of: datetime.datetime,
    order: list[tuple[int | None, PaymentMethod]] | None = None,
    resume: bool = True,
) -> list[Item]:
    """Items for invoices claimed under ``lease``, with what each needs read in a few queries.
    ``order`` replaces every invoice's charge order (Pay now with a chosen method); ``resume``
    leaves out the methods that already declined an invoice in its current retry round."""
    if not invoices:
        return []
    inputs = plan_inputs(invoices=invoices, as_of=as_of, order=order, sequences=True)
    customers: dict[int, dict[str, str]] = {}
    for account_id, gateway, reference in GatewayCustomer.objects.filter(
        account_id__in={invoice.account_id for invoice in invoices}
    ).values_list("account_id", "gateway", "reference"):
        customers.setdefault(account_id, {})[gateway] = reference
    items = []
    for invoice in invoices:
        declined = inputs.declined.get(invoice.pk, frozenset()) if resume else frozenset()
        replays = inputs.unresolved.get(invoice.pk, [])
        for attempt in replays:
            attempt.invoice = invoice  # its call names the invoice: no query for it on the call's thread
        items.append(
            Item(
                invoice=invoice,
                lease=lease,
                order=inputs.order_for(invoice),
                plan=inputs.plan_for(invoice, resume=resume),
                replays=replays,
                gateway_customers=customers.get(invoice.account_id, {}),
                next_sequence=inputs.last_sequence.get(invoice.pk, 0) + 1,
                resumed=bool(declined),
            )
        )
    return items
