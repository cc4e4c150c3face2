"""The console's answers come from the settlement's own plans: Pay now's choices, a skip reported
as a skip, the dashboard's verdict on the next invoice, and timelines that tell what happened."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent, Membership
from invoices.forms import PayNowForm
from invoices.models import PaymentAttempt
from invoices.settlement import Outcome, invoice_pay_now
from invoices.settlement.eligibility import pay_now_choices
from invoices.timeline import Request, attempt_timeline
from payments.models import PaymentMethod
from tests.factories import (
    AccountFactory,
    ChargeOrderEntryFactory,
    InvoiceFactory,
    MembershipFactory,
    PaymentAttemptFactory,
    PaymentMethodFactory,
    SettlementRunFactory,
)
from tests.utils import SUCCEEDS, add_ach, add_card

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(client):
    membership = MembershipFactory(role=Membership.Role.OWNER, account=AccountFactory(name="Acme"))
    client.force_login(membership.user)
    return membership


def test_pay_now_offers_each_method_once_and_disables_what_cannot_pay(owner):
    account = owner.account
    bank = add_ach(account)  # the primary: ACH pays USD only
    card = add_card(account, SUCCEEDS)
    again = PaymentMethodFactory(
        account=account, fingerprint=card.fingerprint, last4=card.last4
    )  # added twice
    invoice = InvoiceFactory(account=account, currency="EUR")
    choices = pay_now_choices(invoice, as_of=timezone.now())
    assert [step.method.pk for step in choices.methods] == [bank.pk, card.pk]
    assert again.pk not in [step.method.pk for step in choices.methods]
    form = PayNowForm(choices=choices)
    html = str(form["method"])
    assert f'<option value="{bank.pk}" disabled>' in html
    assert "(Primary) — can&#x27;t pay EUR invoices</option>" in html
    assert f'<option value="{card.pk}">Visa •••• 4242 (Backup 1)</option>' in html
    refused = PayNowForm({"method": str(bank.pk)}, choices=choices)
    assert not refused.is_valid()
    assert refused.errors["method"] == [f"Nothing was charged: {bank.label} can't pay EUR invoices."]
    assert PayNowForm({"method": str(card.pk)}, choices=choices).is_valid()


def test_pay_now_when_nothing_in_the_order_can_pay(client, owner):
    add_ach(owner.account)
    invoice = InvoiceFactory(account=owner.account, currency="EUR")
    response = client.post(reverse("invoice_pay_now", args=[invoice.pk]), {"method": ""}, follow=True)
    body = response.content.decode()
    assert "Nothing was charged: no method in your charge order can pay this invoice." in body
    assert not invoice.attempts.exists()


def test_a_method_skipped_by_the_run_is_reported_as_a_skip(owner):
    card = add_card(owner.account, SUCCEEDS)
    PaymentMethod.objects.filter(pk=card.pk).update(blocked_at=timezone.now(), blocked_reason="lost_card")
    invoice = InvoiceFactory(account=owner.account)
    result = invoice_pay_now(invoice=invoice, actor=owner.user, method=PaymentMethod.objects.get(pk=card.pk))
    assert result.outcome == Outcome.NOT_CHARGED
    assert result.message == (
        "Nothing was charged: Visa •••• 4242 is blocked by an earlier decline until it is updated."
    )
    assert list(invoice.attempts.values_list("status", flat=True)) == [PaymentAttempt.Status.SKIPPED]


def test_pay_now_is_refused_while_an_outcome_is_awaited(client, owner):
    bank = add_ach(owner.account)
    invoice = InvoiceFactory(account=owner.account)
    PaymentAttemptFactory(invoice=invoice, method=bank, status="pending", decline_code="", decline_class="")
    response = client.post(reverse("invoice_pay_now", args=[invoice.pk]), {"method": ""}, follow=True)
    assert "Pay now is not available yet." in response.content.decode()
    assert invoice.attempts.count() == 1


def test_the_verdict_on_the_next_invoice_with_nothing_open(client, owner):
    expired = PaymentMethodFactory(account=owner.account, last4="0069", exp_month=1, exp_year=2020)
    backup = PaymentMethodFactory(account=owner.account, brand="Mastercard", last4="4444")
    ChargeOrderEntryFactory(method=expired, position=1)
    ChargeOrderEntryFactory(method=backup, position=2)
    body = client.get(reverse("dashboard")).content.decode()
    assert "Your primary has expired; Mastercard •••• 4444 (Backup 1) will be charged." in body
    assert f'href="{reverse("payment_method_expiry", args=[expired.pk])}">Update expiry date' in body
    assert "All good" not in body


def _timeline(invoice, **kwargs):
    attempts = list(invoice.attempts.select_related("method", "initiated_by").order_by("sequence"))
    return attempt_timeline(attempts, **kwargs)


def test_separate_pay_nows_are_separate_groups(owner):
    invoice = InvoiceFactory(account=owner.account)
    method = PaymentMethodFactory(account=owner.account, last4="0002")
    first, second = timezone.now() - datetime.timedelta(minutes=5), timezone.now()
    for sequence, when in ((1, first), (2, second)):
        attempt = PaymentAttemptFactory(
            invoice=invoice, sequence=sequence, method=method, trigger="pay_now", initiated_by=owner.user
        )
        PaymentAttempt.objects.filter(pk=attempt.pk).update(created_at=when + datetime.timedelta(seconds=1))
    assert len(_timeline(invoice)) == 1  # without the requests, nothing tells them apart
    groups = _timeline(invoice, requests=[Request(first), Request(second, method.pk)])
    assert [len(group.entries) for group in groups] == [1, 1]
    # The first went down the charge order and found nothing left; the second had one chosen method.
    assert groups[0].entries[0].text.endswith("— no other method was left to try.")
    assert groups[1].entries[0].text.endswith("— it was the one method chosen for this payment.")


def test_a_debit_refused_later_is_followed_by_the_next_run(owner):
    invoice = InvoiceFactory(account=owner.account)
    bank = PaymentMethodFactory(
        account=owner.account, kind="ach_debit", bank_name="Sandbox Bank", last4="4440"
    )
    card = PaymentMethodFactory(account=owner.account, last4="4242")
    start = timezone.now() - datetime.timedelta(hours=1)
    debit = PaymentAttemptFactory(
        invoice=invoice,
        sequence=1,
        method=bank,
        run=SettlementRunFactory(),
        decline_code="insufficient_funds",
    )
    PaymentAttempt.objects.filter(pk=debit.pk).update(
        created_at=start, completed_at=start + datetime.timedelta(minutes=3)
    )
    # Nothing after it yet, and the invoice still open: the next run goes on with Backup 1.
    upcoming = type("Step", (), {"position": 2})()
    [group] = _timeline(invoice, upcoming=upcoming, collectable=True)
    assert group.entries[0].text.endswith("— the next run will try Backup 1.")
    entry = group.entries[0]
    assert entry.started_at == start and entry.outcome_at == start + datetime.timedelta(minutes=3)
    # The next run charged Backup 1.
    PaymentAttemptFactory(
        invoice=invoice, sequence=2, method=card, position=2, run=SettlementRunFactory(), status="succeeded"
    )
    first, _second = _timeline(invoice)
    assert first.entries[0].text == (
        "Sandbox Bank •••• 4440 was declined: insufficient funds — the next run tried Backup 1."
    )


def test_a_pay_now_audit_event_is_what_splits_the_groups(client, owner):
    """The invoice page reads the requests from the audit log."""
    card = add_card(owner.account, "4000000000000002")
    invoice = InvoiceFactory(account=owner.account)
    for _ in range(2):
        invoice_pay_now(invoice=invoice, actor=owner.user, method=card)
    assert AuditEvent.objects.filter(action=AuditEvent.Action.PAY_NOW).count() == 2
    body = client.get(reverse("invoice_detail", args=[invoice.pk])).content.decode()
    assert body.count('class="timeline__group"') == 2
