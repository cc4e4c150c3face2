"""Refunds and on-session authentication through the Stripe gateway against localstripe (started for
this module, as in test_stripe_localstripe.py): what Stripe itself then holds is checked on its side."""

import urllib.parse
import urllib.request

import pytest

from invoices.authentication import Stage, authentication_finish, authentication_start
from invoices.models import Invoice, PaymentAttempt, Refund
from invoices.refunds import invoice_refund, refund_resolve, refundable_minor
from invoices.settlement import invoice_pay_now
from notifications.models import SentEmail
from tests.factories import AccountFactory, InvoiceFactory
from tests.test_stripe_localstripe import SUCCEEDS, _save_card

# The fixtures ``localstripe`` (a fake Stripe of this module's own) and ``stripe_gateway`` (the
# settings that point Stripe at it) come from tests/conftest.py.

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ASKS_FOR_3DS = "4000002760003184"  # localstripe: every charge waits for 3-D Secure


def _paid_invoice(client, amount_minor=5000):
    account = AccountFactory()
    _save_card(client, account, SUCCEEDS)
    invoice = InvoiceFactory(account=account, currency="USD", amount_minor=amount_minor)
    invoice_pay_now(invoice=invoice, actor=None)
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    return invoice


def test_a_part_and_then_the_rest_are_refunded_at_stripe_each_under_its_own_key(stripe_gateway):
    client = stripe_gateway
    invoice = _paid_invoice(client)
    part = invoice_refund(invoice=invoice, amount_minor=1200, actor=None, reason="Goodwill")
    rest = invoice_refund(invoice=invoice, amount_minor=3800, actor=None, reason="Cancelled")
    assert [part.status, rest.status] == [Refund.Status.SUCCEEDED] * 2
    at_stripe = client.v1.refunds.list(
        params={"payment_intent": invoice.paid_by_attempt.gateway_reference}
    ).data
    assert sorted((r.amount, r.metadata["refund"]) for r in at_stripe) == sorted(
        [(1200, part.idempotency_key), (3800, rest.idempotency_key)]
    )
    assert {r.id for r in at_stripe} == {part.gateway_reference, rest.gateway_reference}
    assert refundable_minor(invoice) == 0


def test_an_unknown_refund_is_found_at_stripe_by_its_key_and_not_made_again(stripe_gateway):
    client = stripe_gateway
    invoice = _paid_invoice(client)
    refund = invoice_refund(invoice=invoice, amount_minor=700, actor=None)
    # As if its answer had been lost after Stripe made it.
    Refund.objects.filter(pk=refund.pk).update(status=Refund.Status.UNKNOWN, gateway_reference="")
    resolved = refund_resolve(refund)
    assert (resolved.status, resolved.gateway_reference) == (
        Refund.Status.SUCCEEDED,
        refund.gateway_reference,
    )
    reference = invoice.paid_by_attempt.gateway_reference
    assert len(client.v1.refunds.list(params={"payment_intent": reference}).data) == 1


def _authenticate_in_browser(localstripe, intent_id, client_secret, *, success=True):
    """What localstripe's fake Stripe.js does when the customer completes 3-D Secure."""
    query = urllib.parse.urlencode({"success": "true" if success else "false"})
    request = urllib.request.Request(
        f"{localstripe}/v1/payment_intents/{intent_id}/_authenticate?{query}",
        data=urllib.parse.urlencode({"key": "pk_test_localstripe", "client_secret": client_secret}).encode(),
        method="POST",
    )
    urllib.request.urlopen(request, timeout=5).close()


def test_a_charge_waiting_for_3ds_is_confirmed_on_session_and_pays_the_invoice(stripe_gateway, localstripe):
    client = stripe_gateway
    account = AccountFactory()
    _save_card(client, account, ASKS_FOR_3DS)
    invoice = InvoiceFactory(account=account, currency="USD", amount_minor=3100)
    invoice_pay_now(invoice=invoice, actor=None)
    attempt = invoice.attempts.get()
    assert attempt.status == PaymentAttempt.Status.REQUIRES_ACTION
    assert SentEmail.objects.filter(event_key=f"authentication_required:{attempt.pk}").count() == 1

    started = authentication_start(invoice)
    assert started.stage == Stage.AUTHENTICATE and started.client_secret.startswith(attempt.gateway_reference)
    _authenticate_in_browser(localstripe, attempt.gateway_reference, started.client_secret)
    finished = authentication_finish(invoice, attempt_id=attempt.pk)

    assert finished.stage == Stage.PAID
    invoice.refresh_from_db()
    assert invoice.paid_by_attempt_id == attempt.pk
    assert client.v1.payment_intents.retrieve(attempt.gateway_reference).status == "succeeded"


def test_when_a_backup_paid_meanwhile_the_waiting_payment_intent_is_cancelled_at_stripe(stripe_gateway):
    client = stripe_gateway
    account = AccountFactory()
    _save_card(client, account, ASKS_FOR_3DS)
    _save_card(client, account, SUCCEEDS)
    invoice = InvoiceFactory(account=account, currency="USD", amount_minor=2200)
    invoice_pay_now(invoice=invoice, actor=None)
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID and invoice.paid_by_backup
    waiting = invoice.attempts.get(position=1)

    assert authentication_start(invoice).stage == Stage.PAID

    waiting.refresh_from_db()
    assert waiting.status == PaymentAttempt.Status.CANCELED
    assert client.v1.payment_intents.retrieve(waiting.gateway_reference).status == "canceled"
    succeeded = [
        intent
        for intent in client.v1.payment_intents.list(params={"limit": 100}).data
        if intent.to_dict()["metadata"].get("invoice") == invoice.number and intent.status == "succeeded"
    ]
    assert len(succeeded) == 1
