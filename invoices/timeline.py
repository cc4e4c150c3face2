"""An invoice's payment attempts told in plain words, grouped by the run that made them.

"Visa •••• 0002 was declined: generic decline — we tried Backup 1 next."
"""

import dataclasses
import itertools
from collections.abc import Sequence

from django.utils.translation import gettext as _

from core.money import format_money
from payments.declines import decline_words
from payments.ranks import position_label

from .models import PaymentAttempt


@dataclasses.dataclass(frozen=True)
class TimelineEntry:
    attempt: PaymentAttempt
    text: str
    note: str = ""


@dataclasses.dataclass(frozen=True)
class TimelineGroup:
    """One settlement pass over the invoice: a scheduled run, a Pay now, a support retry."""

    title: str
    started_at: object
    entries: list


def _method_label(attempt: PaymentAttempt) -> str:
    return attempt.method.label if attempt.method_id else _("No method")


def _describe(attempt: PaymentAttempt, later: Sequence[PaymentAttempt]) -> TimelineEntry:
    label = _method_label(attempt)
    rank = position_label(attempt.position)
    amount = format_money(attempt.amount_minor, attempt.currency)
    status = PaymentAttempt.Status
    if attempt.status == status.SUCCEEDED:
        return TimelineEntry(
            attempt,
            _("%(label)s (%(rank)s) was charged %(amount)s.")
            % {"label": label, "rank": rank, "amount": amount},
        )
    if attempt.status == status.FAILED:
        tried_next = next((a for a in later if a.status != status.SKIPPED), None)
        if tried_next is not None:
            then = _("we tried %(rank)s next") % {"rank": position_label(tried_next.position)}
        elif later:
            then = _("no other method could be tried")
        else:
            then = _("no other method was left to try")
        note = ""
        if attempt.decline_class == PaymentAttempt.DeclineClass.HARD:
            note = _("This method will not be tried again until it is updated.")
        return TimelineEntry(
            attempt,
            _("%(label)s was declined: %(reason)s — %(then)s.")
            % {"label": label, "reason": decline_words(attempt.decline_code), "then": then},
            note,
        )
    if attempt.status == status.PENDING:
        return TimelineEntry(
            attempt,
            _("The debit of %(amount)s from %(label)s (%(rank)s) is waiting for the bank.")
            % {"amount": amount, "label": label, "rank": rank},
            _("Nothing else is charged until the bank confirms or refuses it."),
        )
    if attempt.status == status.UNKNOWN:
        return TimelineEntry(
            attempt,
            _("We could not confirm the charge of %(amount)s to %(label)s (%(rank)s).")
            % {"amount": amount, "label": label, "rank": rank},
            _(
                "We check with the payment processor before charging anything else, "
                "so you are never charged twice."
            ),
        )
    if attempt.status == status.STARTED:
        return TimelineEntry(
            attempt,
            _("Charging %(amount)s to %(label)s (%(rank)s)…")
            % {"amount": amount, "label": label, "rank": rank},
        )
    if attempt.skip_reason == PaymentAttempt.SkipReason.NO_METHODS:
        return TimelineEntry(attempt, _("Nothing was charged: there is no method in the charge order."))
    return TimelineEntry(
        attempt,
        _("%(rank)s (%(label)s) was skipped: %(reason)s.")
        % {"rank": rank, "label": label, "reason": attempt.get_skip_reason_display().lower()},
    )


def _group_key(attempt: PaymentAttempt):
    return (attempt.run_id, attempt.retry_round, attempt.trigger)


def _group_title(attempt: PaymentAttempt) -> str:
    trigger = PaymentAttempt.Trigger
    if attempt.trigger == trigger.PAY_NOW:
        who = attempt.initiated_by.get_username() if attempt.initiated_by_id else ""
        return _("Pay now by %(who)s") % {"who": who} if who else _("Pay now")
    if attempt.trigger == trigger.STAFF_RETRY:
        return _("Retried by support")
    if attempt.retry_round:
        return _("Scheduled run, retry %(n)s") % {"n": attempt.retry_round}
    return _("Scheduled run")


def attempt_timeline(attempts: Sequence[PaymentAttempt]) -> list[TimelineGroup]:
    """``attempts`` in sequence order, with method and initiated_by selected."""
    groups = []
    for _key, rows in itertools.groupby(attempts, key=_group_key):
        rows = list(rows)
        entries = [_describe(attempt, rows[index + 1 :]) for index, attempt in enumerate(rows)]
        groups.append(TimelineGroup(_group_title(rows[0]), rows[0].created_at, entries))
    return groups
