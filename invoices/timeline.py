"""An invoice's payment attempts told in plain words, grouped by the pass that made them (a
scheduled run, or one Pay now or support retry), each with when it started and when its outcome came.

"Visa •••• 0002 was declined: generic decline — we tried Backup 1 next."
"""

import bisect
import dataclasses
import datetime
import itertools
from collections.abc import Sequence

from django.conf import settings
from django.utils import timezone
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

    @property
    def started_at(self) -> datetime.datetime | None:
        """When the charge started (None for a method passed over: it was never charged)."""
        return None if self.attempt.status == PaymentAttempt.Status.SKIPPED else self.attempt.created_at

    @property
    def outcome_at(self) -> datetime.datetime | None:
        """When its outcome came (None while it is awaited)."""
        return self.attempt.completed_at

    @property
    def outcome_on_another_day(self) -> bool:
        start, end = self.started_at, self.outcome_at
        return bool(start and end and timezone.localdate(start) != timezone.localdate(end))


@dataclasses.dataclass(frozen=True)
class TimelineGroup:
    """One settlement pass over the invoice: a scheduled run, a Pay now, a support retry."""

    title: str
    started_at: object
    entries: list


def _method_label(attempt: PaymentAttempt) -> str:
    return attempt.method.label if attempt.method_id else _("No method")


def _answered_later(attempt: PaymentAttempt) -> bool:
    """Its outcome came after the pass that started it had stopped to wait (a bank debit that
    cleared or failed later, a charge confirmed by a later run): no synchronous answer takes
    longer than the gateway's timeout."""
    if attempt.completed_at is None:
        return False
    limit = datetime.timedelta(seconds=settings.GATEWAY_TIMEOUT_SECONDS + 5)
    return attempt.completed_at - attempt.created_at > limit


def _after_decline(attempt, later, following, upcoming, collectable, chosen=False) -> str:
    """What happened after a decline: the next method tried, in this pass or (a scheduled run
    that resumed) in the next one; or what the next run will try; or that nothing was left."""
    status = PaymentAttempt.Status
    tried_next = next((a for a in later if a.status != status.SKIPPED), None)
    if tried_next is None and not later and chosen:
        return _("it was the one method chosen for this payment")
    if tried_next is None and not later:
        if attempt.trigger == PaymentAttempt.Trigger.SCHEDULE:
            # A later scheduled run of the same round resumes after the method that declined.
            resumed = [
                a
                for a in following
                if a.trigger == PaymentAttempt.Trigger.SCHEDULE and a.retry_round == attempt.retry_round
            ]
            resumed_with = next((a for a in resumed if a.status != status.SKIPPED), None)
            if resumed_with is not None:
                return _("the next run tried %(rank)s") % {"rank": position_label(resumed_with.position)}
            if resumed:
                return _("no other method could be tried")
        answered_later = _answered_later(attempt) and collectable and not following
        if tried_next is None and answered_later and upcoming is not None:
            return _("the next run will try %(rank)s") % {"rank": position_label(upcoming.position)}
    if tried_next is not None:
        return _("we tried %(rank)s next") % {"rank": position_label(tried_next.position)}
    if later:
        return _("no other method could be tried")
    return _("no other method was left to try")


def _describe(
    attempt: PaymentAttempt,
    later: Sequence[PaymentAttempt],
    following: Sequence[PaymentAttempt] = (),
    upcoming=None,
    collectable: bool = False,
    chosen: bool = False,
) -> TimelineEntry:
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
        then = _after_decline(attempt, later, following, upcoming, collectable, chosen)
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


@dataclasses.dataclass(frozen=True)
class Request:
    """A Pay now or support retry: when it began, and the one method chosen for it (if any)."""

    at: datetime.datetime
    method_id: int | None = None


def _group_key(attempt: PaymentAttempt, starts: Sequence[datetime.datetime]):
    """A scheduled run's attempts share its run; those made on request (Pay now, Retry now) share
    the request that began them (the audit event recorded before its first attempt)."""
    if attempt.trigger == PaymentAttempt.Trigger.SCHEDULE:
        return (attempt.run_id, attempt.retry_round, attempt.trigger, None)
    request = bisect.bisect_right(starts, attempt.created_at) - 1
    return (attempt.run_id, attempt.retry_round, attempt.trigger, request)


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


def attempt_timeline(
    attempts: Sequence[PaymentAttempt],
    *,
    requests: Sequence[Request] = (),
    upcoming=None,
    collectable: bool = False,
) -> list[TimelineGroup]:
    """``attempts`` in sequence order, with method and initiated_by selected. ``requests``: each
    Pay now or support retry of the invoice; ``upcoming``: the step the next run will charge (a
    PlanStep), if any; ``collectable``: the invoice can still be paid."""
    requests = sorted(requests, key=lambda request: request.at)
    starts = [request.at for request in requests]
    groups, done = [], 0
    for key, rows in itertools.groupby(attempts, key=lambda a: _group_key(a, starts)):
        rows = list(rows)
        done += len(rows)
        following = attempts[done:]
        request = key[3]  # the request that began an on-request pass (-1: none is known)
        chosen = request is not None and request >= 0 and requests[request].method_id is not None
        entries = [
            _describe(attempt, rows[index + 1 :], following, upcoming, collectable, chosen)
            for index, attempt in enumerate(rows)
        ]
        groups.append(TimelineGroup(_group_title(rows[0]), rows[0].created_at, entries))
    return groups
