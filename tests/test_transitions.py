"""The invoice state machine: what each transition changes, and what it refuses."""

import datetime

import pytest
from django.utils import timezone

from accounts.models import Account, AuditEvent
from invoices import transitions
from invoices.models import Invoice, PaymentAttempt
from invoices.transitions import AccountStanding, Context, TransitionRefused
from payments.gateways.base import ChargeResult, ChargeStatus
from tests import utils
from tests.factories import AccountFactory, InvoiceFactory

pytestmark = pytest.mark.django_db
Status = PaymentAttempt.Status
NOW = timezone.make_aware(datetime.datetime(2026, 11, 3, 6, 0))


def result(status, code="", reference="ch_1"):
    return ChargeResult(
        status=status,
        reference=reference,
        idempotency_key="k",
        amount_minor=100,
        currency="USD",
        decline_code=code,
    )


@pytest.fixture
def started():
    account = AccountFactory(currency="USD")
    method = utils.add_card(account, utils.SUCCEEDS)
    invoice = InvoiceFactory(account=account, amount_minor=100, currency="USD")
    attempt = transitions.attempt_start(
        invoice=invoice, sequence=1, method=method, position=2, ctx=Context(now=NOW)
    )
    attempt.save()
    return attempt


def test_a_new_attempt_is_started_with_the_key_of_its_invoice_and_sequence(started):
    assert started.status == Status.STARTED
    assert started.idempotency_key == f"settle-{started.invoice_id}-1"
    assert (started.amount_minor, started.currency) == (100, "USD")


def test_success_records_the_reference_and_completion(started):
    assert transitions.attempt_record(started, result(ChargeStatus.SUCCEEDED), now=NOW) == Status.SUCCEEDED
    assert (started.gateway_reference, started.completed_at) == ("ch_1", NOW)


def test_a_hard_decline_blocks_the_method_and_a_soft_one_does_not(started):
    transitions.attempt_record(started, result(ChargeStatus.FAILED, "stolen_card"), now=NOW)
    assert (started.status, started.decline_class) == (Status.FAILED, "hard")
    assert transitions.attempt_blocks_method(started)
    other = transitions.attempt_start(
        invoice=started.invoice, sequence=2, method=started.method, position=2, ctx=Context(now=NOW)
    )
    transitions.attempt_record(other, result(ChargeStatus.FAILED, "insufficient_funds"), now=NOW)
    assert other.decline_class == "soft" and not transitions.attempt_blocks_method(other)


def test_no_answer_is_unknown_and_a_later_answer_resolves_it(started):
    assert transitions.attempt_record(started, None, now=NOW) == Status.UNKNOWN
    assert started.completed_at is None
    assert transitions.attempt_record(started, result(ChargeStatus.PENDING), now=NOW) == Status.PENDING
    assert (
        transitions.attempt_record(started, result(ChargeStatus.FAILED, "generic_decline"), now=NOW)
        == Status.FAILED
    )


@pytest.mark.parametrize("first", [ChargeStatus.SUCCEEDED, ChargeStatus.FAILED])
@pytest.mark.parametrize("late", [ChargeStatus.SUCCEEDED, ChargeStatus.FAILED, ChargeStatus.PENDING])
def test_a_resolved_attempt_refuses_every_later_answer(started, first, late):
    transitions.attempt_record(
        started, result(first, "generic_decline" if first == "failed" else ""), now=NOW
    )
    assert not transitions.attempt_may_record(started, result(late))
    with pytest.raises(TransitionRefused):
        transitions.attempt_record(started, result(late), now=NOW)


def test_requires_action_moves_on_and_may_still_succeed(started):
    assert (
        transitions.attempt_record(started, result(ChargeStatus.REQUIRES_ACTION), now=NOW)
        == Status.REQUIRES_ACTION
    )
    assert Status.REQUIRES_ACTION not in PaymentAttempt.UNRESOLVED  # the cascade does not wait for it
    assert transitions.attempt_record(started, result(ChargeStatus.SUCCEEDED), now=NOW) == Status.SUCCEEDED


def test_paid_records_how_and_restores_a_past_due_account(started):
    invoice = started.invoice
    invoice.account.status = Account.Status.PAST_DUE
    transitions.attempt_record(started, result(ChargeStatus.SUCCEEDED), now=NOW)
    change = transitions.invoice_paid(invoice=invoice, attempt=started, ctx=Context(now=NOW))
    assert invoice.status == Invoice.Status.PAID
    assert (invoice.paid_at, invoice.paid_by_attempt, invoice.paid_by_method_id) == (
        NOW,
        started,
        started.method_id,
    )
    assert invoice.paid_by_backup and invoice.next_attempt_at is None
    assert change.standing == AccountStanding.PAID
    [audit] = change.audits
    assert audit.action == AuditEvent.Action.INVOICE_PAID and audit.before == {"status": "open"}


def test_an_invoice_is_not_paid_by_an_attempt_that_did_not_succeed(started):
    with pytest.raises(TransitionRefused):
        transitions.invoice_paid(invoice=started.invoice, attempt=started, ctx=Context(now=NOW))


def test_all_failed_follows_the_retry_schedule_then_gives_up():
    invoice = InvoiceFactory()
    ctx = Context(now=NOW, as_of=NOW, retry_days=(1, 3))
    change = transitions.invoice_all_failed(invoice=invoice, ctx=ctx)
    assert (invoice.status, invoice.retry_round, invoice.first_failed_at) == (Invoice.Status.PAST_DUE, 1, NOW)
    assert invoice.next_attempt_at == NOW + datetime.timedelta(days=1)
    assert change.standing == AccountStanding.PAST_DUE
    transitions.invoice_all_failed(invoice=invoice, ctx=ctx)
    assert invoice.next_attempt_at == NOW + datetime.timedelta(days=3)  # counted from the first failure
    change = transitions.invoice_all_failed(invoice=invoice, ctx=ctx)
    assert (invoice.status, invoice.next_attempt_at) == (Invoice.Status.UNCOLLECTIBLE, None)
    assert change.standing == AccountStanding.UNCOLLECTIBLE


def test_a_reschedule_is_always_after_the_runs_as_of():
    """A first failure long ago puts the next round in the past: it is moved after this run, so one
    run never picks an invoice twice."""
    invoice = InvoiceFactory(first_failed_at=NOW - datetime.timedelta(days=30))
    transitions.invoice_all_failed(invoice=invoice, ctx=Context(now=NOW, as_of=NOW, retry_days=(1,)))
    assert invoice.next_attempt_at > NOW


@pytest.mark.parametrize("closed", [Invoice.Status.PAID, Invoice.Status.VOID, Invoice.Status.UNCOLLECTIBLE])
def test_a_closed_invoice_moves_nowhere(closed):
    invoice = InvoiceFactory.build(status=closed)
    for move in (
        lambda: transitions.invoice_all_failed(invoice=invoice, ctx=Context(now=NOW)),
        lambda: transitions.invoice_close(invoice=invoice, status=Invoice.Status.VOID, ctx=Context(now=NOW)),
    ):
        with pytest.raises(TransitionRefused):
            move()
    assert invoice.status == closed


def test_void_records_when():
    invoice = InvoiceFactory()
    change = transitions.invoice_close(invoice=invoice, status=Invoice.Status.VOID, ctx=Context(now=NOW))
    assert (invoice.status, invoice.voided_at, invoice.next_attempt_at) == (Invoice.Status.VOID, NOW, None)
    assert change.audits[0].action == AuditEvent.Action.INVOICE_VOIDED


def test_support_cannot_mark_an_invoice_paid():
    with pytest.raises(TransitionRefused):
        transitions.invoice_close(invoice=InvoiceFactory(), status=Invoice.Status.PAID, ctx=Context(now=NOW))


@pytest.mark.parametrize(
    ("status", "standings", "past_due_left", "expected"),
    [
        (Account.Status.ACTIVE, {AccountStanding.PAST_DUE}, True, Account.Status.PAST_DUE),
        (Account.Status.PAST_DUE, {AccountStanding.UNCOLLECTIBLE}, True, Account.Status.SUSPENDED),
        (Account.Status.SUSPENDED, {AccountStanding.PAST_DUE}, True, None),
        (Account.Status.PAST_DUE, {AccountStanding.PAID}, False, Account.Status.ACTIVE),
        (Account.Status.SUSPENDED, {AccountStanding.PAID}, False, Account.Status.ACTIVE),
        (Account.Status.PAST_DUE, {AccountStanding.PAID}, True, None),
        (Account.Status.ACTIVE, {AccountStanding.PAID}, False, None),
    ],
)
def test_the_account_follows_its_invoices(status, standings, past_due_left, expected):
    account = Account(status=status)
    assert (
        transitions.account_status_after(
            account=account, standings=standings, has_past_due=lambda: past_due_left
        )
        == expected
    )
