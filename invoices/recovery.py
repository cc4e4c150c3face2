"""The recovery report: what the backups are for, in figures.

For one currency and the invoices due in a period: how many the settlement paid, and by which place
in the charge order; the revenue the backups recovered (invoices the primary could not pay but a
backup did); what is still past due, by age; what was written off; and why the charges were declined.

Two aggregate queries whatever the period's length: one pass over the invoices of one currency due
in the period (the ``invoice_recovery_report`` index), one over their declined attempts
(``bench/recovery_report.py`` times them over a million invoices).
"""

import collections
import dataclasses
import datetime
from collections.abc import Iterator

from django.db.models import Case, Count, IntegerField, Q, Sum, Value, When
from django.db.models.functions import TruncWeek
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Account
from core.money import to_major
from payments.declines import decline_words
from payments.ranks import position_label

from .models import Invoice, PaymentAttempt

# Days past due, inclusive at both ends; the last band is open-ended.
AGEING_BANDS = ((0, 7), (8, 30), (31, 60), (61, None))
# The longest period one report covers (its weekly chart stays readable).
MAX_PERIOD_DAYS = 3 * 366
# Without a choice: the invoices due in the last 90 days.
DEFAULT_DAYS = 90


def default_period(today: datetime.date) -> tuple[datetime.date, datetime.date]:
    return today - datetime.timedelta(days=DEFAULT_DAYS), today


def period_error(start: datetime.date, end: datetime.date) -> str | None:
    """Why a period cannot be reported on, in words for the person who chose it; None if it can."""
    if end < start:
        return _("The period must end on or after the day it starts.")
    if (end - start).days > MAX_PERIOD_DAYS:
        return _("A report covers at most %(days)s days.") % {"days": MAX_PERIOD_DAYS}
    return None


@dataclasses.dataclass(frozen=True)
class Figure:
    """A number of invoices and what they add up to, in minor units of the report's currency."""

    count: int = 0
    amount_minor: int = 0

    def __add__(self, other: "Figure") -> "Figure":
        return Figure(self.count + other.count, self.amount_minor + other.amount_minor)


@dataclasses.dataclass(frozen=True)
class PositionRow:
    """Invoices paid by the method at one place of the charge order (``None``: a method the member
    chose for Pay now)."""

    position: int | None
    paid: Figure

    @property
    def label(self) -> str:
        return position_label(self.position)

    @property
    def is_backup(self) -> bool:
        return self.position is not None and self.position > 1


@dataclasses.dataclass(frozen=True)
class AgeingRow:
    first_day: int
    last_day: int | None
    past_due: Figure

    @property
    def label(self) -> str:
        if self.last_day is None:
            return _("Over %(days)s days") % {"days": self.first_day - 1}
        return _("%(first)s–%(last)s days") % {"first": self.first_day, "last": self.last_day}


@dataclasses.dataclass(frozen=True)
class DeclineRow:
    code: str
    count: int

    @property
    def words(self) -> str:
        return decline_words(self.code)


@dataclasses.dataclass(frozen=True)
class WeekRow:
    week: datetime.date  # the Monday that starts it
    recovered_minor: int


@dataclasses.dataclass(frozen=True)
class RecoveryReport:
    currency: str
    start: datetime.date
    end: datetime.date
    as_of: datetime.date
    by_position: list[PositionRow]
    open: Figure
    past_due: Figure
    uncollectible: Figure
    voided: Figure
    ageing: list[AgeingRow]
    declines: list[DeclineRow]
    weekly: list[WeekRow]

    @property
    def paid(self) -> Figure:
        return sum((row.paid for row in self.by_position), Figure())

    @property
    def recovered(self) -> Figure:
        """The headline: invoices the primary did not pay and a backup did."""
        return sum((row.paid for row in self.by_position if row.is_backup), Figure())

    @property
    def settled(self) -> Figure:
        """Invoices the settlement has finished with or is still chasing: paid, past due, written off."""
        return self.paid + self.past_due + self.uncollectible

    @property
    def due(self) -> Figure:
        """Every invoice due in the period except the voided ones."""
        return self.settled + self.open

    @property
    def declined(self) -> int:
        return sum(row.count for row in self.declines)

    def major(self, amount_minor: int):
        return to_major(amount_minor, self.currency)


def report_currencies() -> list[str]:
    """The currencies the report can be asked for: those the accounts are billed in, the most
    common first (the one a report shows unless asked)."""
    rows = Account.objects.values("currency").annotate(accounts=Count("id")).order_by("-accounts", "currency")
    return [row["currency"] for row in rows]


def recovery_report(
    *, currency: str, start: datetime.date, end: datetime.date, as_of: datetime.date | None = None
) -> RecoveryReport:
    """The report for invoices in ``currency`` due from ``start`` to ``end`` (both included),
    with past-due ages counted at ``as_of`` (default: today)."""
    if end < start:
        raise ValueError("the period ends before it starts")
    as_of = as_of or timezone.localdate()

    # One pass over the period's invoices: counted and summed by status, by the place that paid
    # (and the week it paid in), and, for those past due, by how long.
    rows = (
        Invoice.objects.filter(currency=currency, due_on__gte=start, due_on__lte=end)
        .annotate(
            band=_ageing_band(as_of), week=Case(When(status=Invoice.Status.PAID, then=TruncWeek("paid_at")))
        )
        .values("status", "paid_by_position", "band", "week")
        .annotate(count=Count("id"), amount=Sum("amount_minor"))
        .order_by()
    )
    by_status: dict[str, Figure] = collections.defaultdict(Figure)
    by_position: dict[int | None, Figure] = collections.defaultdict(Figure)
    by_band: dict[int, Figure] = collections.defaultdict(Figure)
    recovered_by_week: dict[datetime.date, int] = collections.defaultdict(int)
    for row in rows:
        figure = Figure(row["count"], row["amount"] or 0)
        status, position = row["status"], row["paid_by_position"]
        if status == Invoice.Status.PAID:
            by_position[position] += figure
            if position is not None and position > 1:
                recovered_by_week[_as_date(row["week"])] += figure.amount_minor
        else:
            by_status[status] += figure
        if row["band"] is not None:
            by_band[row["band"]] += figure

    return RecoveryReport(
        currency=currency,
        start=start,
        end=end,
        as_of=as_of,
        by_position=_positions(by_position),
        open=by_status[Invoice.Status.OPEN],
        past_due=by_status[Invoice.Status.PAST_DUE],
        uncollectible=by_status[Invoice.Status.UNCOLLECTIBLE],
        voided=by_status[Invoice.Status.VOID],
        ageing=[AgeingRow(first, last, by_band[i]) for i, (first, last) in enumerate(AGEING_BANDS)],
        declines=_declines(currency, start, end),
        weekly=_weekly(recovered_by_week, start, end),
    )


def _positions(paid: dict[int | None, Figure]) -> list[PositionRow]:
    """Primary and every backup up to the last one that paid anything (so a gap shows as zero),
    then Pay now's chosen methods if any."""
    ranked = [position for position in paid if position is not None]
    rows = [PositionRow(position, paid[position]) for position in range(1, max(ranked, default=1) + 1)]
    if None in paid:
        rows.append(PositionRow(None, paid[None]))
    return rows


def _ageing_band(as_of: datetime.date) -> Case:
    """The index in AGEING_BANDS of a past-due invoice's age at ``as_of``; null for the others.
    ``first`` to ``last`` days past due is due on or before as_of - first and on or after as_of - last."""
    whens = []
    for i, (first, last) in enumerate(AGEING_BANDS):
        q = Q(status=Invoice.Status.PAST_DUE, due_on__lte=as_of - datetime.timedelta(days=first))
        if last is not None:
            q &= Q(due_on__gte=as_of - datetime.timedelta(days=last))
        whens.append(When(q, then=Value(i)))
    return Case(*whens, output_field=IntegerField())


def _declines(currency: str, start: datetime.date, end: datetime.date) -> list[DeclineRow]:
    rows = (
        PaymentAttempt.objects.filter(
            status=PaymentAttempt.Status.FAILED,
            currency=currency,
            invoice__currency=currency,
            invoice__due_on__gte=start,
            invoice__due_on__lte=end,
        )
        .values("decline_code")
        .annotate(count=Count("id"))
        .order_by("-count", "decline_code")
    )
    return [DeclineRow(row["decline_code"], row["count"]) for row in rows]


def _weekly(recovered: dict[datetime.date, int], start: datetime.date, end: datetime.date) -> list[WeekRow]:
    """Recovered revenue by the week it was paid, every week from the period's first to the last
    one with a payment (or the period's end, if later), empty weeks included."""
    first = _monday(min([start, *recovered]))
    last = _monday(max([end, *recovered]))
    return [WeekRow(week, recovered.get(week, 0)) for week in _weeks(first, last)]


def _as_date(moment) -> datetime.date:
    if isinstance(moment, datetime.datetime):
        return timezone.localtime(moment).date() if timezone.is_aware(moment) else moment.date()
    return moment


def _monday(day: datetime.date) -> datetime.date:
    return day - datetime.timedelta(days=day.weekday())


def _weeks(first: datetime.date, last: datetime.date) -> Iterator[datetime.date]:
    week = first
    while week <= last:
        yield week
        week += datetime.timedelta(weeks=1)


def report_csv_rows(report: RecoveryReport) -> Iterator[list[str]]:
    """The report as CSV rows: section, item, invoices, amount (decimal major units), currency —
    the same figures the page and the API show."""
    currency = report.currency

    def figure(section: str, item: str, value: Figure) -> list[str]:
        return [section, item, str(value.count), str(report.major(value.amount_minor)), currency]

    yield [_("Section"), _("Item"), _("Invoices"), _("Amount"), _("Currency")]
    yield [_("Period"), f"{report.start.isoformat()}/{report.end.isoformat()}", "", "", currency]
    yield figure(_("Summary"), _("Invoices settled"), report.settled)
    yield figure(_("Summary"), _("Recovered by backups"), report.recovered)
    yield figure(_("Summary"), _("Paid"), report.paid)
    for row in report.by_position:
        yield figure(_("Paid by"), row.label, row.paid)
    yield figure(_("Summary"), _("Past due"), report.past_due)
    yield figure(_("Summary"), _("Uncollectible"), report.uncollectible)
    yield figure(_("Summary"), _("Not yet settled"), report.open)
    for row in report.ageing:
        yield figure(_("Past due for"), row.label, row.past_due)
    for row in report.declines:
        yield [_("Declines"), row.code or "-", str(row.count), "", ""]
    for row in report.weekly:
        yield [
            _("Recovered in the week of"),
            row.week.isoformat(),
            "",
            str(report.major(row.recovered_minor)),
            currency,
        ]
