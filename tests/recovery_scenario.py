"""A recovery-report scenario with known answers, settled by the real engine (tests/test_recovery_report.py
checks the figures; the browser test reads them on the page)."""

import datetime

import time_machine
from django.utils import timezone

from invoices.models import Invoice
from invoices.settlement import settlement_run
from tests import utils
from tests.factories import AccountFactory, InvoiceFactory, SupportUserFactory

TODAY = timezone.localdate()
START = TODAY - datetime.timedelta(days=90)


def day(days_ago: int) -> datetime.date:
    return TODAY - datetime.timedelta(days=days_ago)


def at(days_ago: int) -> datetime.datetime:
    return timezone.now() - datetime.timedelta(days=days_ago)


def settled_invoice(cards: list[str], *, amount: int, due_days_ago: int, paid_days_ago: int, currency="USD"):
    """An account whose charge order is ``cards``, and its invoice settled by a run on that day."""
    account = AccountFactory(currency=currency)
    for card in cards:
        utils.add_card(account, card)
    invoice = InvoiceFactory(
        account=account,
        amount_minor=amount,
        due_on=day(due_days_ago),
        issued_on=day(due_days_ago + 14),
        next_attempt_at=at(paid_days_ago) - datetime.timedelta(minutes=1),
    )
    with time_machine.travel(at(paid_days_ago), tick=True):
        settlement_run(as_of=timezone.now(), account_id=account.pk)
    invoice.refresh_from_db()
    return invoice


def resting_invoice(status: str, *, amount: int, due_days_ago: int, currency="USD"):
    """An invoice that no run will pick up, in a state settlement leaves invoices in."""
    invoice = InvoiceFactory(
        account=AccountFactory(currency=currency),
        amount_minor=amount,
        due_on=day(due_days_ago),
        issued_on=day(due_days_ago + 14),
        next_attempt_at=None,
    )
    Invoice.objects.filter(pk=invoice.pk).update(status=status)
    return invoice


def scenario():
    """USD invoices due in the last 90 days with known outcomes, and some that must not count."""
    paid = {
        "primary": settled_invoice([utils.SUCCEEDS], amount=10_000, due_days_ago=30, paid_days_ago=30),
        "backup 1": settled_invoice(
            [utils.GENERIC_DECLINE, utils.SUCCEEDS], amount=20_000, due_days_ago=21, paid_days_ago=20
        ),
        "backup 2": settled_invoice(
            [utils.INSUFFICIENT_FUNDS, utils.LOST_CARD, "5555555555554444"],
            amount=30_000,
            due_days_ago=6,
            paid_days_ago=5,
        ),
    }
    # Every method declined: past due, 2 days.
    failed = settled_invoice([utils.GENERIC_DECLINE], amount=40_000, due_days_ago=2, paid_days_ago=2)
    for amount, due_days_ago in ((1_000, 3), (2_000, 10), (3_000, 40), (4_000, 75)):
        resting_invoice(Invoice.Status.PAST_DUE, amount=amount, due_days_ago=due_days_ago)
    resting_invoice(Invoice.Status.UNCOLLECTIBLE, amount=5_000, due_days_ago=50)
    resting_invoice(Invoice.Status.VOID, amount=7_000, due_days_ago=45)
    resting_invoice(Invoice.Status.OPEN, amount=6_000, due_days_ago=0)
    # Outside the question: another currency in the period, and USD due before it.
    settled_invoice(
        [utils.GENERIC_DECLINE, utils.SUCCEEDS],
        amount=90_000,
        due_days_ago=10,
        paid_days_ago=9,
        currency="EUR",
    )
    settled_invoice(
        [utils.GENERIC_DECLINE, utils.SUCCEEDS], amount=80_000, due_days_ago=120, paid_days_ago=100
    )
    return paid, failed


def support_agent(**fields):
    """A support agent, in the group accounts 0002 makes (transactional tests flush it: made again)."""
    utils.support_group_ensure()
    return SupportUserFactory(**fields)
