"""Reminders that a method in the charge order is about to expire: 30 days ahead and again 7 days
ahead, each once, naming the method's rank and what will pay instead if it is not replaced.

A reminder is about one expiry date (it is part of the event key): updating the expiry moves the
method out of the window, so no further reminder goes out, and a new date that is itself close
gets reminders of its own. Methods on file but not in the charge order are never charged, so they
get none.
"""

import dataclasses
import datetime
import enum
from collections import defaultdict

from django.db import transaction
from django.db.models import F

from accounts.models import Account
from notifications.models import SentEmail
from notifications.services import notification_queue

from .models import ChargeOrderEntry, PaymentMethod

# Days before the last day a method can be charged. Only the nearest one that applies is sent, so
# a method first seen 5 days before it expires gets the 7-day reminder alone.
THRESHOLDS = (30, 7)
# The console warns about a method expiring this soon, as the first reminder does.
EXPIRY_WARNING_DAYS = THRESHOLDS[0]


class Outcome(enum.StrEnum):
    SENT = "sent"
    ALREADY_SENT = "already_sent"
    NOT_DUE = "not_due"  # changed since it was listed: updated, removed or out of the charge order
    NO_RECIPIENTS = "no_recipients"


@dataclasses.dataclass(frozen=True)
class ExpiryReminder:
    account: Account
    method: PaymentMethod
    position: int
    expires_on: datetime.date
    days_left: int
    threshold: int
    # What the settlement would charge in its place once it has expired: (position, method).
    fallback: tuple[int, PaymentMethod] | None

    @property
    def event_key(self) -> str:
        return f"method_expiring:{self.method.pk}:{self.expires_on:%Y-%m}:{self.threshold}d"

    def context(self) -> dict:
        """The email's stored context: facts, made into words in each recipient's language when the
        email is rendered (templates/notifications/method_expiring.*)."""
        return {
            "method": self.method.label,
            "method_id": self.method.pk,
            "position": self.position,
            "expires_on": self.expires_on.isoformat(),
            "days_left": self.days_left,
            "threshold": self.threshold,
            "fallback": {"method": self.fallback[1].label, "position": self.fallback[0]}
            if self.fallback
            else None,
        }


def threshold_for(days_left: int) -> int | None:
    """The nearest reminder threshold that ``days_left`` has reached, if any."""
    return next((days for days in sorted(THRESHOLDS) if 0 <= days_left <= days), None)


def _can_pay_on(method: PaymentMethod, *, day: datetime.date, currency: str) -> bool:
    # The settlement's own skip rules (invoices.settlement.plan), for the account's currency.
    return (
        method.is_active
        and not method.is_expired_on(day)
        and method.blocked_at is None
        and method.can_pay_currency(currency)
    )


def _reminders(
    account: Account, order: list[tuple[int, PaymentMethod]], *, today: datetime.date
) -> list[ExpiryReminder]:
    reminders = []
    for index, (position, method) in enumerate(order):
        expires_on = method.expires_on()
        if not method.is_active or expires_on is None:
            continue
        days_left = (expires_on - today).days
        threshold = threshold_for(days_left)
        if threshold is None:
            continue
        day_after = expires_on + datetime.timedelta(days=1)
        fallback = next(
            (
                (later_position, later)
                for later_position, later in order[index + 1 :]
                if _can_pay_on(later, day=day_after, currency=account.currency)
            ),
            None,
        )
        reminders.append(
            ExpiryReminder(
                account=account,
                method=method,
                position=position,
                expires_on=expires_on,
                days_left=days_left,
                threshold=threshold,
                fallback=fallback,
            )
        )
    return reminders


def _month_index(day: datetime.date) -> int:
    return day.year * 12 + day.month - 1


def expiry_reminders_due(*, today: datetime.date, account_id: int | None = None) -> list[ExpiryReminder]:
    """Every reminder due on ``today`` and not sent yet, in two queries."""
    latest = today + datetime.timedelta(days=max(THRESHOLDS))
    expiring = (
        ChargeOrderEntry.objects.filter(method__status=PaymentMethod.Status.ACTIVE)
        .annotate(exp_index=F("method__exp_year") * 12 + F("method__exp_month") - 1)
        .filter(exp_index__gte=_month_index(today), exp_index__lte=_month_index(latest))
    )
    if account_id is not None:
        expiring = expiring.filter(account_id=account_id)
    entries = (
        ChargeOrderEntry.objects.filter(account_id__in=expiring.values("account_id"))
        .select_related("account", "method")
        .order_by("account_id", "position")
    )
    orders = defaultdict(list)
    for entry in entries:
        orders[entry.account].append((entry.position, entry.method))
    reminders = [r for account, order in orders.items() for r in _reminders(account, order, today=today)]
    sent = set(
        SentEmail.objects.filter(event_key__in=[r.event_key for r in reminders]).values_list(
            "event_key", flat=True
        )
    )
    return [r for r in reminders if r.event_key not in sent]


def expiry_reminder_send(*, account_id: int, method_id: int, today: datetime.date) -> Outcome:
    """Queue one method's reminder if it is still due; it is sent when this transaction commits.

    Read again under the account's lock, the one every change to its methods takes
    (payments.services): an expiry updated since the list was read is seen, never overtaken.
    """
    with transaction.atomic():
        account = Account.objects.select_for_update().get(pk=account_id)
        order = [
            (entry.position, entry.method)
            for entry in ChargeOrderEntry.objects.filter(account=account)
            .select_related("method")
            .order_by("position")
        ]
        reminder = next(
            (r for r in _reminders(account, order, today=today) if r.method.pk == method_id), None
        )
        if reminder is None:
            return Outcome.NOT_DUE
        if SentEmail.objects.filter(event_key=reminder.event_key).exists():
            return Outcome.ALREADY_SENT
        email = notification_queue(
            account=account,
            kind=SentEmail.Kind.METHOD_EXPIRING,
            event_key=reminder.event_key,
            context=reminder.context(),
        )
        if email is not None:
            return Outcome.SENT
        # A run working at the same time may have queued it first.
        if SentEmail.objects.filter(event_key=reminder.event_key).exists():
            return Outcome.ALREADY_SENT
        return Outcome.NO_RECIPIENTS
