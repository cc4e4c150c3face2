"""settle_invoices through the Stripe gateway against localstripe, a fake Stripe server started for
this module with fresh data (tests/stripe_support.py). It ignores idempotency keys and has no search;
what it cannot do is covered by recorded responses (test_stripe_gateway.py)."""

import time
import urllib.parse
import urllib.request

import pytest

from invoices.models import Invoice, PaymentAttempt, WebhookEvent
from payments.services import payment_method_setup_finish
from tests.factories import AccountFactory, InvoiceFactory
from tests.stripe_support import KEYS, intents_for, settle

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

SUCCEEDS = "4242424242424242"
DECLINES_WHEN_CHARGED = "4000000000000341"  # attaches, then every charge is declined


def _save_card(client, account, number):
    # What Stripe.js does in the customer's browser: the number goes to Stripe, never to us.
    method = client.v1.payment_methods.create(
        params={"type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2040, "cvc": "123"}}
    )
    return payment_method_setup_finish(account=account, actor=None, kind="card", reference=method.id)


def test_a_declined_primary_falls_back_to_the_backup_which_pays_once(stripe_gateway, localstripe):
    client = stripe_gateway
    account = AccountFactory()
    primary = _save_card(client, account, DECLINES_WHEN_CHARGED)
    backup = _save_card(client, account, SUCCEEDS)
    assert (primary.gateway, primary.last4, backup.last4) == ("stripe", "0341", "4242")
    assert primary.token.startswith("pm_") and backup.token.startswith("pm_")
    invoice = InvoiceFactory(account=account, currency="USD", amount_minor=4200)

    settle(localstripe)

    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    assert invoice.paid_by_method_id == backup.pk
    attempts = list(PaymentAttempt.objects.filter(invoice=invoice).order_by("sequence"))
    assert [(a.method_id, a.status, a.decline_code) for a in attempts] == [
        (primary.pk, "failed", "card_declined"),
        (backup.pk, "succeeded", ""),
    ]
    intents = intents_for(client, invoice.number)
    succeeded = [intent for intent in intents if intent.status == "succeeded"]
    assert len(succeeded) == 1
    [paid] = succeeded
    assert (paid.id, paid.amount, paid.currency, paid.payment_method) == (
        attempts[1].gateway_reference,
        4200,
        "usd",
        backup.token,
    )
    assert paid.metadata["attempt"] == attempts[1].idempotency_key

    # A second run charges nothing.
    settle(localstripe)
    assert len(intents_for(client, invoice.number)) == len(intents)
    assert PaymentAttempt.objects.filter(invoice=invoice).count() == 2


def test_localstripes_signed_webhooks_are_taken_by_the_stripe_endpoint(
    stripe_gateway, localstripe, live_server
):
    """Deliveries signed by another implementation of Stripe's scheme than ours pass the check, are
    stored once each, and change nothing once the attempts are final."""
    client = stripe_gateway
    register = urllib.request.Request(
        f"{localstripe}/_config/webhooks/endpoint",
        data=urllib.parse.urlencode(
            {"url": f"{live_server.url}/webhooks/stripe/", "secret": KEYS["STRIPE_WEBHOOK_SECRET"]}
        ).encode(),
        method="POST",
    )
    urllib.request.urlopen(register, timeout=5).close()
    account = AccountFactory()
    _save_card(client, account, DECLINES_WHEN_CHARGED)
    _save_card(client, account, SUCCEEDS)
    invoice = InvoiceFactory(account=account, currency="USD", amount_minor=1500)

    settle(localstripe)

    references = set(
        PaymentAttempt.objects.filter(invoice=invoice)
        .exclude(gateway_reference="")
        .values_list("gateway_reference", flat=True)
    )
    wanted = {"payment_intent.payment_failed", "payment_intent.succeeded"}
    deadline = time.monotonic() + 30
    while True:
        stored = {
            event.type: event
            for event in WebhookEvent.objects.filter(gateway="stripe", type__startswith="payment_intent.")
            if event.payload["data"]["object"].get("metadata", {}).get("invoice") == invoice.number
        }
        # An event is stored before it is processed: wait for both deliveries' outcomes too.
        processed = all(event.outcome for event in stored.values())
        if (wanted <= set(stored) and processed) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert wanted <= set(stored), f"localstripe delivered {sorted(stored)}"
    assert {event.outcome for event in stored.values()} == {"unchanged"}
    assert stored["payment_intent.succeeded"].reference in references
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
