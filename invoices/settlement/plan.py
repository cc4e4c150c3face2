"""Which methods a settlement would try for an invoice, in what order, and which it skips and why."""

import dataclasses
import datetime
from collections import defaultdict

from django.conf import settings
from django.db.models import Count
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


def recent_attempt_counts(*, method_ids, as_of: datetime.datetime) -> dict[int, int]:
    """Charges per method inside the card networks' re-attempt window, in one query."""
    since = as_of - datetime.timedelta(days=settings.BILLING_REATTEMPT_WINDOW_DAYS)
    rows = (
        PaymentAttempt.objects.filter(method_id__in=set(method_ids), created_at__gte=since)
        .exclude(status=PaymentAttempt.Status.SKIPPED)
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
) -> list[PlanStep]:
    charge_date = timezone.localdate(as_of)
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
    ]


def settlement_preview(*, invoice: Invoice, as_of: datetime.datetime | None = None) -> list[PlanStep]:
    """What the next run would try and skip for ``invoice``, and why. Reads only."""
    as_of = as_of or timezone.now()
    order = charge_orders(account_ids=[invoice.account_id]).get(invoice.account_id, [])
    counts = recent_attempt_counts(method_ids=[m.pk for _, m in order], as_of=as_of)
    return build_plan(invoice=invoice, order=order, as_of=as_of, recent_counts=counts)
