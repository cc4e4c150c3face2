"""send_expiry_reminders: 30 and 7 days before a method in the charge order expires, once each."""

import datetime
import io
import json

import pytest
import time_machine
from django.core.management import CommandError, call_command

from accounts.models import Membership
from notifications.models import SentEmail
from payments import expiry
from payments.expiry import Outcome, expiry_reminder_send, expiry_reminders_due
from payments.models import PaymentMethod
from payments.services import charge_order_set, payment_method_remove, payment_method_update_expiry
from tests import utils
from tests.factories import (
    AccountFactory,
    ChargeOrderEntryFactory,
    MembershipFactory,
    PaymentMethodFactory,
    ProfileFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
UTC = datetime.UTC

# A card that expires "12/2026" can be charged through 31 December 2026.
DAYS_30 = datetime.datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
DAYS_21 = datetime.datetime(2026, 12, 10, 6, 0, tzinfo=UTC)
DAYS_7 = datetime.datetime(2026, 12, 24, 6, 0, tzinfo=UTC)
DAYS_1 = datetime.datetime(2026, 12, 30, 6, 0, tzinfo=UTC)


@pytest.fixture
def account():
    return AccountFactory(name="Acme", billing_email="ap@acme.example", currency="USD")


@pytest.fixture
def people(account):
    def make(role, **kwargs):
        return MembershipFactory(account=account, role=role, user=UserFactory(), **kwargs).user

    return {
        "owner": make(Membership.Role.OWNER),
        "billing": make(Membership.Role.BILLING),
        "viewer": make(Membership.Role.VIEWER),
    }


def ranked(account, *methods):
    for position, method in enumerate(methods, start=1):
        ChargeOrderEntryFactory(method=method, account=account, position=position)
    return methods


def card(account, last4, exp_month=12, exp_year=2026, **kwargs):
    return PaymentMethodFactory(
        account=account, last4=last4, exp_month=exp_month, exp_year=exp_year, **kwargs
    )


@pytest.fixture
def primary_expiring(account, people):
    return ranked(account, card(account, "4242"), card(account, "4444", brand="Mastercard", exp_year=2030))


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    """Run the command as cron would; the emails go out as each reminder's transaction commits."""

    def run(*args):
        out = io.StringIO()
        with django_capture_on_commit_callbacks(execute=True):
            call_command("send_expiry_reminders", *args, stdout=out)
        return out.getvalue()

    return run


def expiring_emails():
    return SentEmail.objects.filter(kind=SentEmail.Kind.METHOD_EXPIRING)


def test_30_and_7_days_ahead_each_send_one_email_and_a_rerun_sends_none(
    account, people, primary_expiring, run, mailoutbox
):
    with time_machine.travel(DAYS_30, tick=False):
        run()
        assert expiring_emails().count() == 1
        run()
        assert expiring_emails().count() == 1
    with time_machine.travel(DAYS_21, tick=False):
        run()
    assert expiring_emails().count() == 1
    with time_machine.travel(DAYS_7, tick=False):
        run()
        run()
    with time_machine.travel(DAYS_1, tick=False):
        run()
    assert expiring_emails().count() == 2
    first, second = mailoutbox
    assert first.subject == "Your payment method Visa •••• 4242 expires in 30 days"
    assert second.subject == "Your payment method Visa •••• 4242 expires in 7 days"
    assert sorted(first.to) == sorted([people["owner"].email, people["billing"].email, account.billing_email])
    assert people["viewer"].email not in first.to


def test_the_email_names_the_position_and_what_pays_instead(
    account, people, primary_expiring, run, mailoutbox
):
    with time_machine.travel(DAYS_30, tick=False):
        run()
    [message] = mailoutbox
    body = " ".join(message.body.split())
    assert "Visa •••• 4242, Primary in the charge order of Acme" in body
    assert "until the end of December 2026" in body
    assert "will be charged to Mastercard •••• 4444 (Backup 1) instead" in body
    html = message.alternatives[0].content
    assert "Mastercard •••• 4444" in html and f"#method-{primary_expiring[0].pk}" in html
    for method in primary_expiring:
        assert method.token not in body and method.token not in html


def test_updating_the_expiry_cancels_the_reminders_still_to_come(account, people, primary_expiring, run):
    primary = primary_expiring[0]
    with time_machine.travel(DAYS_30, tick=False):
        run()
        payment_method_update_expiry(method=primary, actor=people["owner"], exp_month=11, exp_year=2029)
    for moment in (DAYS_7, DAYS_1):
        with time_machine.travel(moment, tick=False):
            run()
    assert expiring_emails().count() == 1


def test_an_expiry_updated_after_the_list_was_read_is_not_reminded(account, people, primary_expiring):
    primary = primary_expiring[0]
    today = DAYS_7.date()
    [reminder] = expiry_reminders_due(today=today)
    payment_method_update_expiry(method=primary, actor=people["owner"], exp_month=11, exp_year=2029)
    outcome = expiry_reminder_send(account_id=account.pk, method_id=reminder.method.pk, today=today)
    assert outcome == Outcome.NOT_DUE
    assert not expiring_emails().exists()


def test_dry_run_sends_nothing(account, people, primary_expiring, run, mailoutbox):
    with time_machine.travel(DAYS_30, tick=False):
        text = run("--dry-run")
        data = json.loads(run("--dry-run", "--json"))
    assert "Dry run" in text and "Visa •••• 4242 (Primary)" in text and "would send" in text
    assert data["dry_run"] is True and data["considered"] == 1
    [reminder] = data["reminders"]
    assert reminder["outcome"] == "would_send"
    assert (reminder["threshold"], reminder["days_left"], reminder["instead"]) == (
        30,
        30,
        "Mastercard •••• 4444",
    )
    assert not SentEmail.objects.exists()
    assert mailoutbox == []


def test_json_counts(account, people, primary_expiring, run):
    with time_machine.travel(DAYS_30, tick=False):
        first = json.loads(run("--json"))
        second = json.loads(run("--json"))
    assert (first["considered"], first["sent"], first["errors"], first["dry_run"]) == (1, 1, 0, False)
    assert first["reminders"][0]["outcome"] == "sent"
    assert (second["considered"], second["sent"]) == (0, 0)


def test_a_method_first_seen_inside_seven_days_gets_only_the_seven_day_reminder(account, people, run):
    ranked(account, card(account, "4242"))
    with time_machine.travel(DAYS_7, tick=False):
        run()
    assert list(expiring_emails().values_list("context__threshold", flat=True)) == [7]


def test_only_active_cards_in_the_charge_order_are_reminded(account, people, run):
    on_file_only = card(account, "1111")
    removed = card(account, "2222")
    bank = PaymentMethodFactory(
        account=account,
        kind=PaymentMethod.Kind.ACH_DEBIT,
        bank_name="Bank",
        last4="6789",
        exp_month=None,
        exp_year=None,
    )
    later = card(account, "3333", exp_month=1, exp_year=2027)
    expired = card(account, "4444", exp_month=11, exp_year=2026)
    ranked(account, removed, bank, later, expired)
    payment_method_remove(method=removed, actor=None)
    with time_machine.travel(DAYS_7, tick=False):
        run()
    assert not expiring_emails().exists(), on_file_only


def test_a_backup_names_the_method_tried_in_its_place(account, people, run, mailoutbox):
    primary = card(account, "1111", exp_year=2030)
    backup = card(account, "2222")
    blocked = card(account, "3333", exp_year=2030)
    blocked.blocked_at = DAYS_30
    blocked.save()
    third = card(account, "4444", exp_year=2030)
    ranked(account, primary, backup, blocked, third)
    with time_machine.travel(DAYS_30, tick=False):
        run()
    [message] = mailoutbox
    body = " ".join(message.body.split())
    assert "Visa •••• 2222, Backup 1 in the charge order" in body
    assert "it will be skipped, and Visa •••• 4444 (Backup 3) will be tried in its place" in body


def test_a_primary_with_nothing_to_pay_instead_says_so(account, people, run, mailoutbox):
    euro_only = PaymentMethodFactory(
        account=account,
        kind=PaymentMethod.Kind.SEPA_DEBIT,
        bank_name="Bank",
        last4="3000",
        exp_month=None,
        exp_year=None,
    )
    ranked(account, card(account, "4242"), card(account, "0005", exp_month=12, exp_year=2026), euro_only)
    with time_machine.travel(DAYS_30, tick=False):
        run()
    primary_email = next(m for m in mailoutbox if "4242" in m.subject)
    assert "your invoices will go unpaid" in " ".join(primary_email.body.split())


def test_a_new_expiry_inside_the_window_gets_reminders_of_its_own(account, people, run):
    [primary] = ranked(account, card(account, "4242", exp_month=12, exp_year=2026))
    with time_machine.travel(DAYS_30, tick=False):
        run()
        payment_method_update_expiry(method=primary, actor=None, exp_month=1, exp_year=2027)
    with time_machine.travel(datetime.datetime(2027, 1, 1, 6, tzinfo=UTC), tick=False):
        run()
    assert sorted(expiring_emails().values_list("event_key", flat=True)) == [
        f"method_expiring:{primary.pk}:2026-12:30d",
        f"method_expiring:{primary.pk}:2027-01:30d",
    ]


def test_opted_out_members_are_not_reminded(account, people, primary_expiring, run, mailoutbox):
    Membership.objects.filter(user=people["billing"]).update(email_opt_out=True)
    with time_machine.travel(DAYS_30, tick=False):
        run()
    assert people["billing"].email not in mailoutbox[0].to
    assert people["owner"].email in mailoutbox[0].to


def test_the_reminder_is_written_in_each_recipients_language(
    account, people, primary_expiring, run, mailoutbox
):
    ProfileFactory(user=people["owner"], language="ja")
    with time_machine.travel(DAYS_30, tick=False):
        run()
    assert expiring_emails().count() == 1
    english, japanese = mailoutbox
    assert japanese.to == [people["owner"].email]
    assert 'lang="ja"' in japanese.alternatives[0].content
    assert "2026年12月" in japanese.body
    assert "December 2026" in english.body


def test_no_recipients_sends_nothing_and_records_nothing(run):
    account = AccountFactory(billing_email="")
    ranked(account, card(account, "4242"))
    with time_machine.travel(DAYS_30, tick=False):
        data = json.loads(run("--json"))
    assert data["no_recipients"] == 1
    assert not SentEmail.objects.exists()


def test_as_of_and_account_options(account, people, primary_expiring, run):
    other = AccountFactory()
    MembershipFactory(account=other)
    ranked(other, card(other, "9999"))
    data = json.loads(run("--json", "--as-of", "2026-12-01", "--account", str(account.pk)))
    assert data["as_of"] == "2026-12-01" and data["sent"] == 1
    assert {e.account_id for e in expiring_emails()} == {account.pk}


@pytest.mark.parametrize(
    "args, message",
    [
        (["--as-of", "next tuesday"], "--as-of must be an ISO 8601 date"),
        (["--account", "987654"], "There is no account 987654"),
    ],
)
def test_bad_arguments_exit_2(args, message):
    with pytest.raises(CommandError, match=message) as raised:
        call_command("send_expiry_reminders", *args)
    assert raised.value.returncode == 2


def test_an_unexpected_error_exits_1_and_the_other_reminders_are_still_sent(
    account, people, run, monkeypatch, mailoutbox
):
    first, second = ranked(account, card(account, "1111"), card(account, "2222"))
    real = expiry.expiry_reminder_send

    def flaky(*, account_id, method_id, today):
        if method_id == first.pk:
            raise RuntimeError("boom")
        return real(account_id=account_id, method_id=method_id, today=today)

    monkeypatch.setattr("payments.management.commands.send_expiry_reminders.expiry_reminder_send", flaky)
    with time_machine.travel(DAYS_30, tick=False), pytest.raises(CommandError) as raised:
        run()
    assert raised.value.returncode == 1
    assert list(expiring_emails().values_list("context__method_id", flat=True)) == [second.pk]
    assert len(mailoutbox) == 1


@pytest.mark.django_db(transaction=True)
def test_as_a_process_the_exit_status_says_how_it_went():
    bad = utils.manage("send_expiry_reminders", "--as-of", "soon")
    _out, err = bad.communicate(timeout=60)
    assert bad.returncode == 2, err
    good = utils.manage("send_expiry_reminders", "--json", "--as-of", "2026-12-01")
    out, err = good.communicate(timeout=60)
    assert good.returncode == 0, err
    assert json.loads(out)["considered"] == 0


@pytest.mark.django_db(transaction=True)
def test_sent_after_commit_through_real_transactions(account, people, mailoutbox):
    """The same path without captured callbacks: the email leaves when the reminder commits."""
    with time_machine.travel(DAYS_30, tick=False):
        utils.add_card(account, utils.SUCCEEDS, exp_month=12, exp_year=2026)
        mailoutbox.clear()  # the security notice for the new card
        call_command("send_expiry_reminders", stdout=io.StringIO())
    assert [m.subject for m in mailoutbox] == ["Your payment method Visa •••• 4242 expires in 30 days"]


def test_charge_order_changes_are_seen(account, people, primary_expiring, run, mailoutbox):
    primary, backup = primary_expiring
    charge_order_set(account=account, actor=None, method_ids=[backup.pk, primary.pk])
    mailoutbox.clear()
    with time_machine.travel(DAYS_30, tick=False):
        run()
    [message] = [m for m in mailoutbox if "expires" in m.subject]
    body = " ".join(message.body.split())
    assert "Backup 1 in the charge order" in body
    assert "no method ranked after it could pay instead" in body
