"""Which methods a settlement would try for an invoice, in what order, and which it skips and why."""

import dataclasses
import datetime
from collections import defaultdict

from django.conf import settings
from django.db.models import Count, Max
from django.utils import timezone

from invoices.models import Invoice, PaymentAttempt
from payments.models import ChargeOrderEntry, PaymentMethod
from payments.ranks import position_label

SkipReason = PaymentAttempt.SkipReason


@dataclasses.dataclass(frozen=True)
class PlanStep:
    method: PaymentMethod
    position: int | None  # 1 is the primary; None for a method chosen outside the charge order
    skip_reason: str = ""

    @property
    def will_try(self) -> bool:
        return not self.skip_reason

    @property
    def position_label(self) -> str:
        return position_label(self.position)

    @property
    def skip_reason_label(self) -> str:
        return str(SkipReason(self.skip_reason).label) if self.skip_reason else ""


def charge_orders(*, account_ids) -> dict[int, list[tuple[int, PaymentMethod]]]:
    """The charge order of each account, as (position, method), in one query."""
    orders = defaultdict(list)
    entries = (
        ChargeOrderEntry.objects.filter(account_id__in=set(account_ids))
        .select_related("method")
        .order_by("account_id", "position")
    )
    for entry in entries:
        orders[entry.account_id].append((entry.position, entry.method))
    return orders


# What the card networks' re-attempt cap does not count: a charge that went through, a method
# passed over, an attempt closed without a charge.
NOT_REATTEMPTS = (
    PaymentAttempt.Status.SUCCEEDED,
    PaymentAttempt.Status.SKIPPED,
    PaymentAttempt.Status.CANCELED,
)


def recent_attempt_counts(*, method_ids, as_of: datetime.datetime) -> dict[int, int]:
    """Attempts per method inside the card networks' re-attempt window that did not go through
    (declined, or still awaiting their outcome), in one query."""
    since = as_of - datetime.timedelta(days=settings.BILLING_REATTEMPT_WINDOW_DAYS)
    rows = (
        PaymentAttempt.objects.filter(method_id__in=set(method_ids), created_at__gte=since)
        .exclude(status__in=NOT_REATTEMPTS)
        .values("method_id")
        .annotate(n=Count("pk"))
    )
    return {row["method_id"]: row["n"] for row in rows}


def skip_reason_for(
    method: PaymentMethod, *, invoice: Invoice, charge_date: datetime.date, recent_attempts: int
) -> str:
    if not method.is_active:
        return SkipReason.REMOVED
    if method.is_expired_on(charge_date):
        return SkipReason.EXPIRED
    if not method.can_pay_currency(invoice.currency):
        return SkipReason.CURRENCY
    if method.blocked_at is not None:
        return SkipReason.BLOCKED
    if recent_attempts >= settings.BILLING_REATTEMPT_CAP:
        return SkipReason.REATTEMPT_CAP
    return ""


def build_plan(
    *,
    invoice: Invoice,
    order: list[tuple[int | None, PaymentMethod]],
    as_of: datetime.datetime,
    recent_counts: dict[int, int],
    declined: frozenset[int] = frozenset(),
    after: int | None = None,
) -> list[PlanStep]:
    """The steps for ``invoice`` down ``order``. An interrupted cascade resumes: it starts after
    ``after`` (the last method that declined the invoice in this retry round) when that method is
    still in the order, and leaves out every method in ``declined`` (each declined it already in
    this round), so no method is charged twice in one round."""
    charge_date = timezone.localdate(as_of)
    if after is not None:
        ranks = [index for index, (_position, method) in enumerate(order) if method.pk == after]
        if ranks:
            order = order[ranks[0] + 1 :]
    return [
        PlanStep(
            method=method,
            position=position,
            skip_reason=skip_reason_for(
                method,
                invoice=invoice,
                charge_date=charge_date,
                recent_attempts=recent_counts.get(method.pk, 0),
            ),
        )
        for position, method in order
        if method.pk not in declined
    ]


@dataclasses.dataclass
class PlanInputs:
    """Everything a plan reads, for many invoices at once, in a few queries."""

    as_of: datetime.datetime
    orders: dict[int, list[tuple[int | None, PaymentMethod]]]  # by account
    recent_counts: dict[int, int]  # charges per method in the re-attempt window
    unresolved: dict[int, list[PaymentAttempt]]  # by invoice, oldest first
    declined: dict[int, frozenset[int]]  # by invoice: methods that declined it in this round
    last_declined: dict[int, int]  # by invoice: the method that declined it last in this round
    last_sequence: dict[int, int]  # by invoice; read only when asked for (``sequences``)

    def order_for(self, invoice: Invoice) -> list[tuple[int | None, PaymentMethod]]:
        return self.orders.get(invoice.account_id, [])

    def plan_for(self, invoice: Invoice, *, order=None, resume: bool = True) -> list[PlanStep]:
        return build_plan(
            invoice=invoice,
            order=self.order_for(invoice) if order is None else order,
            as_of=self.as_of,
            recent_counts=self.recent_counts,
            declined=self.declined.get(invoice.pk, frozenset()) if resume else frozenset(),
            after=self.last_declined.get(invoice.pk) if resume else None,
        )


def plan_inputs(
    *,
    invoices: list[Invoice],
    as_of: datetime.datetime,
    order: list[tuple[int | None, PaymentMethod]] | None = None,
    sequences: bool = False,
) -> PlanInputs:
    """What the plans of ``invoices`` need: their charge orders (or ``order`` for every one), the
    recent charges of those methods, unresolved attempts, and the methods each already tried and
    saw declined in its current retry round; with ``sequences``, also their last attempt numbers
    (what a run that records attempts needs, and a page that only shows plans does not). The one
    reader behind the settlement engine, the dry run, and the console's preview, verdict and Pay
    now choices (``eligibility``)."""
    ids = [invoice.pk for invoice in invoices if invoice.pk is not None]  # an unsaved one has no history
    if order is not None:
        orders = {invoice.account_id: order for invoice in invoices}
    else:
        orders = charge_orders(account_ids=[invoice.account_id for invoice in invoices])
    method_ids = {method.pk for entries in orders.values() for _position, method in entries}
    unresolved = defaultdict(list)
    declined = defaultdict(set)
    last_declined = {}
    last_sequence = {}
    if ids:
        rounds = {invoice.pk: invoice.retry_round for invoice in invoices}
        for attempt in (
            PaymentAttempt.objects.filter(invoice_id__in=ids)
            .exclude(status__in=[PaymentAttempt.Status.SUCCEEDED, PaymentAttempt.Status.SKIPPED])
            .select_related("method")
            .order_by("invoice_id", "sequence")
        ):
            if attempt.status in PaymentAttempt.UNRESOLVED:
                unresolved[attempt.invoice_id].append(attempt)
            elif (
                attempt.status in DECLINED_IN_ROUND
                and attempt.trigger == PaymentAttempt.Trigger.SCHEDULE
                and attempt.retry_round == rounds[attempt.invoice_id]
            ):
                declined[attempt.invoice_id].add(attempt.method_id)
                last_declined[attempt.invoice_id] = attempt.method_id
    if ids and sequences:
        last_sequence = dict(
            PaymentAttempt.objects.filter(invoice_id__in=ids)
            .values("invoice_id")
            .annotate(n=Max("sequence"))
            .values_list("invoice_id", "n")
        )
    return PlanInputs(
        as_of=as_of,
        orders=orders,
        recent_counts=recent_attempt_counts(method_ids=method_ids, as_of=as_of) if method_ids else {},
        unresolved=dict(unresolved),
        declined={invoice_id: frozenset(methods) for invoice_id, methods in declined.items()},
        last_declined=last_declined,
        last_sequence=last_sequence,
    )


# A scheduled cascade does not charge these methods again in the same retry round.
DECLINED_IN_ROUND = (
    PaymentAttempt.Status.FAILED,
    PaymentAttempt.Status.REQUIRES_ACTION,
)


def settlement_preview(*, invoice: Invoice, as_of: datetime.datetime | None = None) -> list[PlanStep]:
    """What the next run would try and skip for ``invoice``, and why. Reads only."""
    as_of = as_of or timezone.now()
    return plan_inputs(invoices=[invoice], as_of=as_of).plan_for(invoice)
