"""payments announces charge_order_changed once the change commits; invoices reacts by making the
account's past-due invoices eligible at the next run (SPEC: next attempt = now)."""

import contextlib
import datetime

import pytest
from django.db import transaction
from django.utils import timezone

from invoices.models import Invoice
from payments.services import (
    charge_order_ids,
    charge_order_set,
    payment_method_remove,
    payment_method_update_expiry,
)
from payments.signals import charge_order_changed
from tests import utils
from tests.factories import AccountFactory, ChargeOrderEntryFactory, InvoiceFactory, PaymentMethodFactory

pytestmark = pytest.mark.django_db

LATER = timezone.now() + datetime.timedelta(days=3)


@pytest.fixture
def account():
    return AccountFactory()


@pytest.fixture
def order(account):
    """A primary and a backup, in that order."""
    first = ChargeOrderEntryFactory(method=PaymentMethodFactory(account=account), position=1).method
    second = ChargeOrderEntryFactory(method=PaymentMethodFactory(account=account), position=2).method
    return [first, second]


@pytest.fixture
def sent():
    calls = []

    def receiver(sender, **kwargs):
        calls.append(kwargs["account_id"])

    charge_order_changed.connect(receiver)
    yield calls
    charge_order_changed.disconnect(receiver)


@contextlib.contextmanager
def failing_transaction():
    with transaction.atomic():
        yield
        raise ValueError("the request failed after the change")


def past_due(account, **fields):
    return InvoiceFactory(account=account, status=Invoice.Status.PAST_DUE, next_attempt_at=LATER, **fields)


def next_attempt(invoice):
    invoice.refresh_from_db()
    return invoice.next_attempt_at


def test_re_ranking_makes_a_past_due_invoice_eligible_once_the_change_commits(
    account, order, django_capture_on_commit_callbacks
):
    invoice = past_due(account)
    with django_capture_on_commit_callbacks(execute=True):
        charge_order_set(account=account, actor=None, method_ids=[order[1].pk, order[0].pk])
        # Inside the customer's transaction, invoices are not touched yet.
        assert next_attempt(invoice) == LATER
    assert next_attempt(invoice) <= timezone.now()


def test_only_the_accounts_past_due_invoices_move(account, order, django_capture_on_commit_callbacks):
    invoice = past_due(account)
    still_open = InvoiceFactory(account=account, next_attempt_at=LATER)
    written_off = InvoiceFactory(account=account, status=Invoice.Status.UNCOLLECTIBLE, next_attempt_at=LATER)
    other_account = past_due(AccountFactory())
    with django_capture_on_commit_callbacks(execute=True):
        charge_order_set(account=account, actor=None, method_ids=[order[1].pk, order[0].pk])
    assert next_attempt(invoice) <= timezone.now()
    assert [next_attempt(i) for i in (still_open, written_off, other_account)] == [LATER] * 3


def test_adding_a_method_or_updating_its_expiry_announces_it(
    account, order, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        utils.add_card(account, utils.SUCCEEDS, in_order=False)
    assert sent == [account.pk]
    with django_capture_on_commit_callbacks(execute=True):
        payment_method_update_expiry(method=order[0], actor=None, exp_month=1, exp_year=2040)
    assert sent == [account.pk, account.pk]


def test_nothing_is_announced_without_a_change_or_for_a_removal(
    account, order, sent, django_capture_on_commit_callbacks
):
    invoice = past_due(account)
    with django_capture_on_commit_callbacks(execute=True):
        charge_order_set(account=account, actor=None, method_ids=[order[0].pk, order[1].pk])  # as it was
        payment_method_remove(method=order[1], actor=None)
    assert sent == []
    assert next_attempt(invoice) == LATER


def test_nothing_is_announced_when_the_change_rolls_back(
    account, order, sent, django_capture_on_commit_callbacks
):
    captured = django_capture_on_commit_callbacks(execute=True)
    with pytest.raises(ValueError), captured as callbacks, failing_transaction():
        charge_order_set(account=account, actor=None, method_ids=[order[1].pk, order[0].pk])
    assert callbacks == [] and sent == []


def test_a_failing_receiver_does_not_undo_the_customers_change(
    account, order, django_capture_on_commit_callbacks, caplog
):
    def broken(sender, **kwargs):
        raise RuntimeError("invoices are unavailable")

    charge_order_changed.connect(broken)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            charge_order_set(account=account, actor=None, method_ids=[order[1].pk, order[0].pk])
    finally:
        charge_order_changed.disconnect(broken)
    assert charge_order_ids(account=account) == [order[1].pk, order[0].pk]
    assert "invoices are unavailable" in caplog.text
