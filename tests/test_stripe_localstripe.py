"""settle_invoices through the Stripe gateway against localstripe, a fake Stripe server, started here
on 127.0.0.1 at a free port with fresh data for this module, and stopped after it. It ignores
idempotency keys and has no search; what it cannot do is covered by recorded responses
(test_stripe_gateway.py)."""

import json
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest
import stripe

from invoices.models import Invoice, PaymentAttempt, WebhookEvent
from payments.services import payment_method_setup_finish
from tests import utils
from tests.factories import AccountFactory, InvoiceFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

KEYS = {
    "STRIPE_SECRET_KEY": "sk_test_localstripe",
    "STRIPE_PUBLISHABLE_KEY": "pk_test_localstripe",
    "STRIPE_WEBHOOK_SECRET": "whsec_localstripe",
}
SUCCEEDS = "4242424242424242"
DECLINES_WHEN_CHARGED = "4000000000000341"  # attaches, then every charge is declined

# localstripe's own start() listens on every interface and writes its data to a shared file in /tmp;
# this one listens on 127.0.0.1 only and keeps its data in memory.
LAUNCHER = """
import socket, sys
from aiohttp import web
from localstripe import resources, server
resources.Store.dump_to_disk = lambda self: None
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", int(sys.argv[1])))
web.run_app(server.app, sock=sock, print=None)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def localstripe():
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                request = urllib.request.Request(
                    f"{base}/v1/customers", headers={"Authorization": f"Bearer {KEYS['STRIPE_SECRET_KEY']}"}
                )
                urllib.request.urlopen(request, timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode()
                assert time.monotonic() < deadline, "localstripe did not start"
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stderr.close()


@pytest.fixture
def stripe_gateway(settings, localstripe):
    for name, value in KEYS.items():
        setattr(settings, name, value)
    settings.STRIPE_API_BASE = localstripe
    settings.PAYMENT_GATEWAY = "stripe"
    return stripe.StripeClient(
        KEYS["STRIPE_SECRET_KEY"], base_addresses={"api": localstripe}, max_network_retries=0
    )


def _save_card(client, account, number):
    # What Stripe.js does in the customer's browser: the number goes to Stripe, never to us.
    method = client.v1.payment_methods.create(
        params={"type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2040, "cvc": "123"}}
    )
    return payment_method_setup_finish(account=account, actor=None, kind="card", reference=method.id)


def _settle(localstripe):
    env = utils.command_env(PAYMENT_GATEWAY="stripe", STRIPE_API_BASE=localstripe, **KEYS)
    proc = utils.manage("settle_invoices", "--json", env=env)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return json.loads(out)


def _intents_for(client, invoice_number):
    intents = client.v1.payment_intents.list(params={"limit": 100}).data
    return [intent for intent in intents if intent.to_dict()["metadata"].get("invoice") == invoice_number]


def test_a_declined_primary_falls_back_to_the_backup_which_pays_once(stripe_gateway, localstripe):
    client = stripe_gateway
    account = AccountFactory()
    primary = _save_card(client, account, DECLINES_WHEN_CHARGED)
    backup = _save_card(client, account, SUCCEEDS)
    assert (primary.gateway, primary.last4, backup.last4) == ("stripe", "0341", "4242")
    assert primary.token.startswith("pm_") and backup.token.startswith("pm_")
    invoice = InvoiceFactory(account=account, currency="USD", amount_minor=4200)

    _settle(localstripe)

    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    assert invoice.paid_by_method_id == backup.pk
    attempts = list(PaymentAttempt.objects.filter(invoice=invoice).order_by("sequence"))
    assert [(a.method_id, a.status, a.decline_code) for a in attempts] == [
        (primary.pk, "failed", "card_declined"),
        (backup.pk, "succeeded", ""),
    ]
    intents = _intents_for(client, invoice.number)
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
    _settle(localstripe)
    assert len(_intents_for(client, invoice.number)) == len(intents)
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

    _settle(localstripe)

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
        if wanted <= set(stored) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert wanted <= set(stored), f"localstripe delivered {sorted(stored)}"
    assert {event.outcome for event in stored.values()} == {"unchanged"}
    assert stored["payment_intent.succeeded"].reference in references
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
