"""The cascade: primary first, then backups in the customer's order, in one run."""

import datetime
import io
import json

import pytest
import time_machine
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from accounts.models import Account
from invoices.models import Invoice, PaymentAttempt
from invoices.settlement import settlement_run
from notifications.models import SentEmail
from payments.models import PaymentMethod
from payments.services import charge_order_set, payment_method_remove, payment_method_update_expiry
from tests import utils
from tests.factories import AccountFactory, InvoiceFactory, MembershipFactory

pytestmark = pytest.mark.django_db(transaction=True)
Status = PaymentAttempt.Status


@pytest.fixture
def account():
    account = AccountFactory(currency="USD")
    MembershipFactory(account=account)
    return account


def settle(**kwargs):
    return settlement_run(**kwargs)


def attempts_of(invoice):
    return list(
        invoice.attempts.order_by("sequence").values_list("position", "status", "decline_code", "skip_reason")
    )


def test_primary_pays(account):
    primary = utils.add_card(account, utils.SUCCEEDS)
    utils.add_card(account, utils.SUCCEEDS)
    invoice = InvoiceFactory(account=account)

    summary = settle()

    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    assert invoice.paid_by_method == primary and not invoice.paid_by_backup
    assert attempts_of(invoice) == [(1, Status.SUCCEEDED, "", "")]
    assert utils.successful_charges(token=primary.token).count() == 1
    assert summary.counts["paid_by_primary"] == 1


def test_primary_soft_declined_backup_one_pays(account, mailoutbox):
    primary = utils.add_card(account, utils.GENERIC_DECLINE)
    backup = utils.add_card(account, utils.SUCCEEDS)
    invoice = InvoiceFactory(account=account)
    mail.outbox.clear()

    summary = settle()

    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    assert invoice.paid_by_method == backup and invoice.paid_by_backup
    assert attempts_of(invoice) == [(1, Status.FAILED, "generic_decline", ""), (2, Status.SUCCEEDED, "", "")]
    assert invoice.attempts.get(position=1).decline_class == "soft"
    primary.refresh_from_db()
    assert primary.blocked_at is None
    assert summary.counts["paid_by_backup"] == 1
    [email] = [m for m in mailoutbox if "backup" in m.subject]
    assert primary.label in email.body and backup.label in email.body


def test_primary_and_backup_one_declined_backup_two_pays(account):
    utils.add_card(account, utils.GENERIC_DECLINE)
    utils.add_card(account, utils.INSUFFICIENT_FUNDS)
    third = utils.add_card(account, utils.SUCCEEDS)
    invoice = InvoiceFactory(account=account)

    settle()

    invoice.refresh_from_db()
    assert invoice.paid_by_method == third
    assert attempts_of(invoice) == [
        (1, Status.FAILED, "generic_decline", ""),
        (2, Status.FAILED, "insufficient_funds", ""),
        (3, Status.SUCCEEDED, "", ""),
    ]


def test_all_declined_is_past_due_with_next_attempt_from_schedule(account, mailoutbox):
    utils.add_card(account, utils.GENERIC_DECLINE)
    utils.add_card(account, utils.INSUFFICIENT_FUNDS)
    invoice = InvoiceFactory(account=account)
    as_of = timezone.now()

    summary = settle(as_of=as_of)

    invoice.refresh_from_db()
    account.refresh_from_db()
    assert invoice.status == Invoice.Status.PAST_DUE
    assert invoice.next_attempt_at == as_of + datetime.timedelta(days=1)
    assert account.status == Account.Status.PAST_DUE
    assert summary.counts["past_due"] == 1
    assert SentEmail.objects.filter(kind=SentEmail.Kind.ALL_FAILED, account=account).count() == 1
    assert utils.successful_charges().count() == 0


def test_hard_decline_blocks_method_until_updated_soft_does_not(account):
    hard = utils.add_card(account, utils.LOST_CARD)
    soft = utils.add_card(account, utils.GENERIC_DECLINE)
    invoice = InvoiceFactory(account=account)
    start = timezone.now()

    settle(as_of=start)
    invoice.refresh_from_db()
    hard.refresh_from_db()
    assert invoice.attempts.get(method=hard).decline_class == "hard"
    assert hard.blocked_reason == "lost_card"

    settle(as_of=start + datetime.timedelta(days=1, minutes=1))
    second_round = list(invoice.attempts.filter(retry_round=1).order_by("sequence"))
    assert [(a.method_id, a.status, a.skip_reason) for a in second_round] == [
        (hard.pk, Status.SKIPPED, PaymentAttempt.SkipReason.BLOCKED),
        (soft.pk, Status.FAILED, ""),
    ]

    payment_method_update_expiry(method=hard, actor=None, exp_month=11, exp_year=2041)
    settle(as_of=start + datetime.timedelta(days=3, minutes=1))
    assert invoice.attempts.filter(method=hard, status=Status.FAILED).count() == 2


@pytest.mark.parametrize("concurrency", [1, 8])
def test_a_card_declined_as_lost_is_not_tried_again_for_the_accounts_other_invoices(account, concurrency):
    # Invoices of one account settle together; one method is never charged twice at the same
    # time, so the first hard decline blocks the card before the next invoice reaches it.
    lost = utils.add_card(account, utils.LOST_CARD)
    backup = utils.add_card(account, utils.SUCCEEDS)
    invoices = [InvoiceFactory(account=account) for _ in range(5)]

    summary = settle(concurrency=concurrency)

    assert summary.counts["paid_by_backup"] == 5
    tried = PaymentAttempt.objects.filter(method=lost).exclude(status=Status.SKIPPED)
    assert list(tried.values_list("decline_code", flat=True)) == ["lost_card"]
    skips = PaymentAttempt.objects.filter(method=lost, status=Status.SKIPPED)
    assert set(skips.values_list("skip_reason", flat=True)) == {PaymentAttempt.SkipReason.BLOCKED}
    assert skips.count() == 4
    assert utils.successful_charges(token=backup.token).count() == 5
    assert all(
        i.status == Invoice.Status.PAID for i in Invoice.objects.filter(pk__in=[i.pk for i in invoices])
    )


def test_removed_expired_currency_and_capped_methods_are_skipped_with_reasons(account, settings):
    settings.BILLING_MAX_BACKUPS = 5
    usd_bank = utils.add_ach(account)
    expired = utils.add_card(account, utils.SUCCEEDS)
    PaymentMethod.objects.filter(pk=expired.pk).update(exp_month=1, exp_year=2020)
    capped = utils.add_card(account, utils.SUCCEEDS)
    removed_later = utils.add_card(account, utils.SUCCEEDS)
    payer = utils.add_card(account, utils.SUCCEEDS)
    invoice = InvoiceFactory(account=account, currency="EUR")
    settings.BILLING_REATTEMPT_CAP = 2
    for n in range(2):
        PaymentAttempt.objects.create(
            invoice=InvoiceFactory(account=account),
            sequence=1,
            method=capped,
            position=3,
            amount_minor=100,
            currency="USD",
            status=Status.FAILED,
            idempotency_key=f"cap-{n}",
            decline_code="generic_decline",
            decline_class="soft",
        )
    payment_method_remove(method=removed_later, actor=None)
    Invoice.objects.exclude(pk=invoice.pk).update(status=Invoice.Status.VOID)

    settle()

    invoice.refresh_from_db()
    assert invoice.paid_by_method == payer
    skipped = dict(invoice.attempts.filter(status=Status.SKIPPED).values_list("method_id", "skip_reason"))
    assert skipped == {
        usd_bank.pk: PaymentAttempt.SkipReason.CURRENCY,
        expired.pk: PaymentAttempt.SkipReason.EXPIRED,
        capped.pk: PaymentAttempt.SkipReason.REATTEMPT_CAP,
    }
    assert not invoice.attempts.filter(method=removed_later).exists()


def test_method_removed_after_the_claim_is_skipped_not_charged(account, monkeypatch):
    first = utils.add_card(account, utils.GENERIC_DECLINE)
    second = utils.add_card(account, utils.SUCCEEDS)
    third = utils.add_card(account, utils.SUCCEEDS)
    invoice = InvoiceFactory(account=account)
    from invoices.settlement import calls

    real_call = calls._call_gateway

    def call_then_customer_removes_backup(attempt, replay=False):
        result = real_call(attempt, replay=replay)
        if attempt.method_id == first.pk:
            PaymentMethod.objects.filter(pk=second.pk).update(status="removed", removed_at=timezone.now())
        return result

    monkeypatch.setattr(calls, "_call_gateway", call_then_customer_removes_backup)
    settle()

    invoice.refresh_from_db()
    assert invoice.paid_by_method == third
    assert invoice.attempts.get(method=second).skip_reason == PaymentAttempt.SkipReason.REMOVED
    assert not utils.successful_charges(token=second.token).exists()


def test_no_method_at_all_is_past_due_with_reason(account):
    invoice = InvoiceFactory(account=account)
    settle()
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAST_DUE
    assert attempts_of(invoice) == [(None, Status.SKIPPED, "", PaymentAttempt.SkipReason.NO_METHODS)]


def test_lost_reply_is_unknown_charges_no_backup_and_is_reconciled_next_run(account):
    flaky = utils.add_card(account, utils.REPLY_LOST)
    backup = utils.add_card(account, utils.SUCCEEDS)
    invoice = InvoiceFactory(account=account)

    first = settle()
    invoice.refresh_from_db()
    assert first.counts["unknown"] == 1
    assert attempts_of(invoice) == [(1, Status.UNKNOWN, "", "")]
    assert invoice.status == Invoice.Status.OPEN
    assert not utils.successful_charges(token=backup.token).exists()

    settle()
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID and invoice.paid_by_method == flaky
    assert attempts_of(invoice) == [(1, Status.SUCCEEDED, "", "")]
    assert utils.successful_charges().count() == 1


def test_timeout_before_charge_is_resolved_with_the_same_key(account):
    utils.add_card(account, utils.TIMEOUT_BEFORE_CHARGE)
    invoice = InvoiceFactory(account=account)
    settle()
    key = invoice.attempts.get().idempotency_key
    settle()
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    assert list(utils.successful_charges().values_list("idempotency_key", flat=True)) == [key]


def test_pending_bank_debit_blocks_fallback_until_it_fails_then_next_method(account, settings):
    settings.SANDBOX_CLEARING_SECONDS = 3600
    bank = utils.add_ach(account, "000111111116")  # clears as insufficient_funds
    backup = utils.add_card(account, utils.SUCCEEDS)
    invoice = InvoiceFactory(account=account)

    assert settle().counts["pending"] == 1
    assert settle().counts["pending"] == 1, "still clearing: nothing else may be charged"
    assert not utils.successful_charges(token=backup.token).exists()
    assert attempts_of(invoice) == [(1, Status.PENDING, "", "")]

    with time_machine.travel(timezone.now() + datetime.timedelta(hours=2)):
        settle()
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID and invoice.paid_by_method == backup
    assert attempts_of(invoice) == [
        (1, Status.FAILED, "insufficient_funds", ""),
        (2, Status.SUCCEEDED, "", ""),
    ]
    assert bank.pk == invoice.attempts.first().method_id


def test_retry_schedule_then_uncollectible_and_suspension_then_restored_by_payment(account, mailoutbox):
    card = utils.add_card(account, utils.GENERIC_DECLINE)
    invoice = InvoiceFactory(account=account)
    start = (timezone.now() + datetime.timedelta(seconds=1)).replace(microsecond=0)

    with time_machine.travel(start, tick=False):
        settle()
    invoice.refresh_from_db()
    expected = [start + datetime.timedelta(days=d) for d in (1, 3, 5, 7)]
    assert invoice.next_attempt_at == expected[0]

    for round_, when in enumerate(expected, start=1):
        with time_machine.travel(when - datetime.timedelta(minutes=1), tick=False):
            assert settle().counts["considered"] == 0, "not due before its time"
        with time_machine.travel(when, tick=False):
            settle()
        invoice.refresh_from_db()
        if round_ < 4:
            assert invoice.status == Invoice.Status.PAST_DUE
            assert invoice.next_attempt_at == expected[round_]
    account.refresh_from_db()
    assert invoice.status == Invoice.Status.UNCOLLECTIBLE
    assert account.status == Account.Status.SUSPENDED
    assert SentEmail.objects.filter(kind=SentEmail.Kind.ACCOUNT_SUSPENDED).count() == 1
    assert invoice.attempts.exclude(status=Status.SKIPPED).count() == 5

    # A later payment restores the account.
    payment_method_remove(method=card, actor=None)
    utils.add_card(account, utils.SUCCEEDS)
    later = InvoiceFactory(account=account)
    settle()
    later.refresh_from_db()
    account.refresh_from_db()
    assert later.status == Invoice.Status.PAID
    assert account.status == Account.Status.ACTIVE


def test_changing_methods_makes_a_past_due_invoice_eligible_now(account):
    declined = utils.add_card(account, utils.GENERIC_DECLINE)
    invoice = InvoiceFactory(account=account)
    start = timezone.now()
    settle(as_of=start)
    invoice.refresh_from_db()
    assert invoice.next_attempt_at > start + datetime.timedelta(hours=23)

    good = utils.add_card(account, utils.SUCCEEDS, in_order=False)
    invoice.refresh_from_db()
    assert invoice.next_attempt_at <= timezone.now()
    charge_order_set(account=account, actor=None, method_ids=[good.pk, declined.pk])
    settle()
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID and invoice.paid_by_method == good


def test_emails_are_sent_once_and_a_rerun_sends_nothing(account, mailoutbox):
    utils.add_card(account, utils.GENERIC_DECLINE)
    utils.add_card(account, utils.SUCCEEDS)
    InvoiceFactory(account=account)
    mail.outbox.clear()
    settle()
    sent = len(mailoutbox)
    assert sent == 1  # the backup notice; the receipt waits for send_notifications
    assert SentEmail.objects.filter(kind=SentEmail.Kind.RECEIPT, status=SentEmail.Status.QUEUED).count() == 1
    settle()
    assert len(mailoutbox) == sent
    assert SentEmail.objects.filter(kind=SentEmail.Kind.RECEIPT).count() == 1


def test_emails_with_the_file_backend(account, settings, tmp_path):
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "OPTIONS": {"file_path": str(tmp_path)},
        }
    }
    utils.add_card(account, utils.GENERIC_DECLINE, in_order=True)
    InvoiceFactory(account=account)
    before = set(tmp_path.iterdir())
    settle()
    settle()
    written = [p for p in tmp_path.iterdir() if p not in before]
    contents = "".join(p.read_text() for p in written)
    assert contents.count("Subject: Action needed") == 1


def test_json_output_has_the_spec_keys_and_matches_the_database(account):
    utils.add_card(account, utils.GENERIC_DECLINE)
    utils.add_card(account, utils.SUCCEEDS)
    other = AccountFactory()
    utils.add_card(other, utils.SUCCEEDS)
    InvoiceFactory(account=account)
    InvoiceFactory(account=other)
    InvoiceFactory(account=AccountFactory())  # no methods at all
    out = io.StringIO()

    call_command("settle_invoices", "--json", stdout=out)

    data = json.loads(out.getvalue())
    assert set(data) == {
        "considered",
        "paid",
        "paid_by_primary",
        "paid_by_backup",
        "past_due",
        "uncollectible",
        "pending",
        "unknown",
        "skipped",
        "errors",
        "duration_s",
    }
    assert data["considered"] == 3
    assert data["paid"] == Invoice.objects.filter(status="paid").count() == 2
    assert data["paid_by_backup"] == Invoice.objects.filter(paid_by_backup=True).count() == 1
    assert data["past_due"] == Invoice.objects.filter(status="past_due").count() == 1
    assert data["errors"] == 0


def test_a_call_that_raises_errors_its_invoice_only_and_leaves_the_attempt_to_reconcile(monkeypatch):
    good, bad = AccountFactory(), AccountFactory()
    utils.add_card(good, utils.SUCCEEDS)
    broken = utils.add_card(bad, utils.SUCCEEDS)
    ok_invoice, bad_invoice = InvoiceFactory(account=good), InvoiceFactory(account=bad)
    from invoices.settlement import calls

    real_call = calls._call_gateway

    def explode_for_one(attempt, replay=False):
        if attempt.method_id == broken.pk:
            raise RuntimeError("gateway client bug")
        return real_call(attempt, replay=replay)

    monkeypatch.setattr(calls, "_call_gateway", explode_for_one)
    summary = settle()

    ok_invoice.refresh_from_db()
    bad_invoice.refresh_from_db()
    assert (summary.counts["paid"], summary.counts["errors"]) == (1, 1)
    assert ok_invoice.status == Invoice.Status.PAID
    assert bad_invoice.status == Invoice.Status.OPEN and bad_invoice.lease_token
    assert attempts_of(bad_invoice) == [(1, Status.STARTED, "", "")]


def test_a_worker_that_outlived_its_lease_changes_nothing(account, monkeypatch):
    card = utils.add_card(account, utils.SUCCEEDS)
    invoice = InvoiceFactory(account=account)
    from invoices.settlement import calls

    real_call = calls._call_gateway
    takeover = {}

    def stall_past_the_lease(attempt, replay=False):
        if not takeover:
            takeover["started"] = True
            # While this worker waits on the gateway, its lease runs out and another run takes over.
            Invoice.objects.filter(pk=invoice.pk).update(
                lease_expires_at=timezone.now() - datetime.timedelta(seconds=1)
            )
            takeover["summary"] = settle()
        return real_call(attempt, replay=replay)

    monkeypatch.setattr(calls, "_call_gateway", stall_past_the_lease)
    stalled = settle()

    invoice.refresh_from_db()
    assert takeover["summary"].counts["paid"] == 1
    assert stalled.counts["paid"] == 0
    assert invoice.status == Invoice.Status.PAID
    assert attempts_of(invoice) == [(1, Status.SUCCEEDED, "", "")]
    assert utils.successful_charges(token=card.token).count() == 1


def test_an_interrupted_cascade_resumes_after_the_method_that_declined(account):
    """A run that recorded the primary's decline and stopped (killed, or its lease lost) before it
    tried the backup: the next run in the same round goes on at the backup, not the primary again."""
    from invoices import transitions
    from invoices.settlement import calls
    from invoices.transitions import Context
    from payments.gateways.base import ChargeStatus

    primary = utils.add_card(account, utils.GENERIC_DECLINE)
    backup = utils.add_card(account, utils.SUCCEEDS)
    invoice = InvoiceFactory(account=account)
    declined = transitions.attempt_start(
        invoice=invoice, sequence=1, method=primary, position=1, ctx=Context(now=timezone.now())
    )
    declined.save()
    reply = calls._call_gateway(declined)
    assert reply.status == ChargeStatus.FAILED
    transitions.attempt_record(declined, reply, now=timezone.now())
    declined.save()

    settle()

    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID and invoice.paid_by_method == backup
    assert attempts_of(invoice) == [(1, Status.FAILED, "generic_decline", ""), (2, Status.SUCCEEDED, "", "")]
    assert utils.SandboxCharge.objects.filter(token=primary.token).count() == 1


def test_a_new_round_starts_again_at_the_primary(account):
    """The resume holds within a round only: after every method failed, the next round tries the
    primary first again."""
    primary = utils.add_card(account, utils.GENERIC_DECLINE)
    utils.add_card(account, utils.INSUFFICIENT_FUNDS)
    invoice = InvoiceFactory(account=account)
    settle()
    invoice.refresh_from_db()
    assert (invoice.status, invoice.retry_round) == (Invoice.Status.PAST_DUE, 1)

    settle(as_of=invoice.next_attempt_at)

    second_round = list(
        invoice.attempts.filter(retry_round=1).order_by("sequence").values_list("method", "status")
    )
    assert second_round[0] == (primary.pk, Status.FAILED)
    assert len(second_round) == 2
