"""Every kind of email produced by the code that really sends it (settlement, payment method
changes, expiry reminders), with real transactions: who gets what, and that each stored context
renders with nothing missing in every language."""

import datetime
import json
import re

import pytest
from django.utils import timezone, translation

from accounts.models import Account, Membership
from invoices.models import Invoice
from invoices.settlement import settlement_run
from notifications.models import SentEmail
from notifications.rendering import render_email
from notifications.services import notification_deliver_due
from payments.expiry import Outcome, expiry_reminder_send
from payments.services import payment_method_remove
from tests import utils
from tests.factories import AccountFactory, InvoiceFactory, MembershipFactory, UserFactory
from tests.test_notifications_templates import assert_clean

Kind = SentEmail.Kind


@pytest.mark.django_db(transaction=True)
def test_a_member_who_opted_out_receives_only_security_and_failed_payment_emails(settings, mailoutbox):
    settings.BILLING_RETRY_DAYS = [1]  # one retry, then uncollectible: every kind in one story
    account = AccountFactory(name="Smith & Co", billing_email="ap@smith.example", currency="USD")
    alice = UserFactory(first_name="Alice", email="alice@smith.example")
    bob = UserFactory(first_name="Bob", email="bob@smith.example")
    MembershipFactory(account=account, user=alice, role=Membership.Role.OWNER, email_opt_out=True)
    MembershipFactory(account=account, user=bob, role=Membership.Role.OWNER)

    # Security notices: adding methods.
    declines = utils.add_card(account, utils.GENERIC_DECLINE, actor=alice)
    pays = utils.add_card(account, utils.SUCCEEDS, actor=alice)
    soon = timezone.localdate() + datetime.timedelta(days=40)
    expiring = utils.add_card(
        account, "5555555555554444", exp_month=soon.month, exp_year=soon.year, actor=alice
    )
    # Paid by a backup.
    InvoiceFactory(account=account, number="INV-2026-0001", amount_minor=12_500)
    settlement_run()
    # An expiry reminder, 30 days ahead.
    assert (
        expiry_reminder_send(
            account_id=account.pk,
            method_id=expiring.pk,
            today=expiring.expires_on() - datetime.timedelta(days=30),
        )
        == Outcome.SENT
    )
    # Every method fails, then the last retry fails too: past due, then suspended.
    payment_method_remove(method=pays, actor=alice)
    payment_method_remove(method=expiring, actor=alice)
    unpaid = InvoiceFactory(account=account, number="INV-2026-0002", amount_minor=99_00)
    settlement_run()
    unpaid.refresh_from_db()
    assert unpaid.status == Invoice.Status.PAST_DUE
    settlement_run(as_of=unpaid.next_attempt_at + datetime.timedelta(minutes=1))
    unpaid.refresh_from_db()
    account.refresh_from_db()
    assert unpaid.status == Invoice.Status.UNCOLLECTIBLE and account.status == Account.Status.SUSPENDED

    # The security notices leave when their window closes, the receipt when it is sent
    # (send_notifications).
    notification_deliver_due(
        now=timezone.now() + datetime.timedelta(seconds=settings.SECURITY_NOTICE_WINDOW_SECONDS)
    )
    emails = list(SentEmail.objects.order_by("pk"))
    # Every kind that goes to an account's members (an invitation goes to a person not yet one), but
    # the authentication request: no sandbox card asks for 3-D Secure (that email has its own flow,
    # tests/test_authentication.py).
    member_kinds = set(Kind) - {Kind.INVITATION, Kind.AUTHENTICATION_REQUIRED}
    assert {e.kind for e in emails} == member_kinds
    assert all(e.status == SentEmail.Status.SENT for e in emails), [(e.kind, e.error) for e in emails]

    def kinds_for(address):
        return {e.kind for e in emails if address in e.recipients}

    assert kinds_for(alice.email) == {Kind.SECURITY_NOTICE, Kind.ALL_FAILED, Kind.ACCOUNT_SUSPENDED}
    assert kinds_for(bob.email) == member_kinds
    assert kinds_for(account.billing_email) == member_kinds - {Kind.SECURITY_NOTICE}
    # What the outbox saw matches what was recorded, one message per email (one language here).
    assert len(mailoutbox) == len(emails)
    assert sum(alice.email in m.to for m in mailoutbox) == sum(alice.email in e.recipients for e in emails)
    # Every link in every message opens the console in this account.
    for message in mailoutbox:
        links = re.findall(re.escape(settings.SITE_URL) + r"/\S*", message.body)
        assert links and all(re.search(rf"\?account={account.pk}(#method-\d+)?$", link) for link in links), (
            links
        )

    # Every stored context renders with nothing missing, no token, no long number, in every language.
    settings.TEMPLATES = [
        {**t, "OPTIONS": {**t.get("OPTIONS", {}), "string_if_invalid": "MISSING[%s]"}}
        for t in settings.TEMPLATES
    ]
    tokens = [m.token for m in (declines, pays, expiring)]
    for email in emails:
        assert not any(token in json.dumps(email.context) for token in tokens)
        assert not re.search(r"\.\d{6}", json.dumps(email.context)), "times are stored to the second"
        for language, _name in settings.LANGUAGES:
            with translation.override(language):
                rendered = render_email(kind=email.kind, context=email.context, account_name=account.name)
            assert_clean(rendered)
            for part in (rendered.subject, rendered.text, rendered.html):
                assert not any(token in part for token in tokens)

    backup_charged = next(e for e in emails if e.kind == Kind.BACKUP_CHARGED)
    with translation.override("en"):
        text = render_email(kind=Kind.BACKUP_CHARGED, context=backup_charged.context, account_name="A").text
    assert re.search(r"paid with Visa •••• 4242 \(Backup 1\)", text)
    assert "Visa •••• 0002 (Primary) was declined: generic decline." in text
    assert "$125.00" in text
    suspended = next(m for m in mailoutbox if "suspended" in m.subject)
    assert "$99.00" in suspended.body and "INV-2026-0002" in suspended.body
