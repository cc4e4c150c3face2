"""localstripe (a fake Stripe server) for the tests: on 127.0.0.1 at a free port, its data in memory,
fresh for each start.

localstripe lists PaymentIntents without filters, oldest first; Stripe filters them by ``customer`` and
``created`` and lists newest first. The launcher teaches it that much of Stripe's list, which the
gateway's lookups (``find``) and reconciliation (``list_charges``) rely on.
"""

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request

import stripe

SECRET_KEY = "sk_test_localstripe"
KEYS = {
    "STRIPE_SECRET_KEY": SECRET_KEY,
    "STRIPE_PUBLISHABLE_KEY": "pk_test_localstripe",
    "STRIPE_WEBHOOK_SECRET": "whsec_localstripe",
}
SUCCEEDS = "4242424242424242"
DECLINES_WHEN_CHARGED = "4000000000000341"  # attaches, then every charge is declined

LAUNCHER = """
import socket, sys
from aiohttp import web
from localstripe import resources, server
from localstripe.errors import UserError

resources.Store.dump_to_disk = lambda self: None

def list_payment_intents(cls, url, customer=None, created=None, limit=None, starting_after=None, **kwargs):
    if kwargs:
        raise UserError(400, "Unexpected " + ", ".join(kwargs))
    bounds = created if isinstance(created, dict) else ({} if created is None else {"eq": created})
    tests = {
        "gt": lambda c, v: c > v, "gte": lambda c, v: c >= v,
        "lt": lambda c, v: c < v, "lte": lambda c, v: c <= v, "eq": lambda c, v: c == v,
    }
    li = resources.List(url, limit=limit, starting_after=starting_after)
    li._list = [
        value for key, value in resources.store.items()
        if key.startswith(cls.object + ":")
        and (customer is None or value.customer == customer)
        and all(tests[op](value.created, int(v)) for op, v in bounds.items())
    ]
    li._list.sort(key=lambda pi: pi.created, reverse=True)  # newest first, as Stripe lists
    return li

resources.PaymentIntent._api_list_all = classmethod(list_payment_intents)

sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", int(sys.argv[1])))
web.run_app(server.app, sock=sock, print=None)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_localstripe():
    """Yields the base address of a fresh localstripe; stops it afterwards."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                request = urllib.request.Request(
                    f"{base}/v1/customers", headers={"Authorization": f"Bearer {SECRET_KEY}"}
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


def client(base: str) -> stripe.StripeClient:
    """A client straight to localstripe (not through the product's request bucket)."""
    return stripe.StripeClient(SECRET_KEY, base_addresses={"api": base}, max_network_retries=0)


def all_payment_intents(stripe_client: stripe.StripeClient) -> list[dict]:
    """Every PaymentIntent the server holds, page by page."""
    intents, params = [], {"limit": 100}
    while True:
        page = stripe_client.v1.payment_intents.list(params=dict(params))
        intents.extend(intent.to_dict() for intent in page.data)
        if not page.has_more:
            return intents
        params["starting_after"] = page.data[-1].id


def save_card(stripe_client: stripe.StripeClient, account, number: str):
    """What Stripe.js does in the customer's browser (the number goes to Stripe, never to us), then
    what our server does with the PaymentMethod id it is handed."""
    from payments.customers import gateway_customer_reference
    from payments.gateways import get_gateway
    from payments.services import payment_method_create

    method = stripe_client.v1.payment_methods.create(
        params={"type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2040, "cvc": "123"}}
    )
    # As payment_method_setup_finish does, except that one account may keep the same test card
    # twice (a primary and a backup of one number), which the console would refuse.
    gateway = get_gateway()
    customer = gateway_customer_reference(account_id=account.pk, gateway=gateway.name)
    tokenized = gateway.finish_setup(account=account, kind="card", customer=customer, reference=method.id)
    return payment_method_create(
        account=account, actor=None, tokenized=tokenized, gateway=gateway.name, allow_duplicate=True
    )


# (primary card, backup card, invoice paid?), by account.
MIX = [
    *[(SUCCEEDS, SUCCEEDS, True)] * 3,
    (DECLINES_WHEN_CHARGED, SUCCEEDS, True),
    (DECLINES_WHEN_CHARGED, DECLINES_WHEN_CHARGED, False),
]


def seed_invoices(stripe_client, *, accounts: int, invoices_per_account: int, mix=MIX) -> dict[int, bool]:
    """Accounts with Stripe cards (a primary and a backup) and due invoices; {invoice id: paid?}."""
    import datetime

    from django.utils import timezone

    from invoices.models import Invoice
    from tests.factories import AccountFactory

    now, today = timezone.now(), timezone.localdate()
    expected, invoices = {}, []
    for n in range(accounts):
        primary, backup, paid = mix[n % len(mix)]
        account = AccountFactory()
        save_card(stripe_client, account, primary)
        if backup:
            save_card(stripe_client, account, backup)
        for i in range(invoices_per_account):
            invoices.append(
                Invoice(
                    account=account,
                    number=f"S-{n:05d}-{i:03d}",
                    currency="USD",
                    amount_minor=1000 + i,
                    issued_on=today - datetime.timedelta(days=10),
                    due_on=today,
                    next_attempt_at=now,
                )
            )
            expected[invoices[-1].number] = paid
    created = Invoice.objects.bulk_create(invoices, batch_size=1000)
    return {invoice.pk: expected[invoice.number] for invoice in created}


def assert_settled_exactly_once_at_stripe(stripe_client, expected: dict[int, bool]) -> None:
    """The ledger check on Stripe's side: per invoice at most one succeeded PaymentIntent; each paid
    invoice has exactly one, and it is the invoice's paid attempt (its id, key and amount); the
    invoices that could not be paid have none; no attempt is left unresolved."""
    from collections import defaultdict

    from invoices.models import Invoice, PaymentAttempt
    from payments.models import GatewayCustomer

    invoices = {invoice.pk: invoice for invoice in Invoice.objects.select_related("paid_by_attempt")}
    by_number = {invoice.number: invoice for invoice in invoices.values()}
    keys = set(PaymentAttempt.objects.exclude(idempotency_key=None).values_list("idempotency_key", flat=True))
    # The server outlives a test's database: only this test's customers count.
    customers = set(GatewayCustomer.objects.values_list("reference", flat=True))
    succeeded = defaultdict(list)
    for intent in all_payment_intents(stripe_client):
        if intent["status"] == "succeeded" and intent["customer"] in customers:
            metadata = intent.get("metadata") or {}
            assert metadata.get("attempt") in keys, f"{intent['id']} names no attempt of ours"
            succeeded[metadata.get("invoice")].append(intent)
    for number, intents in succeeded.items():
        assert len(intents) == 1, f"invoice {number} was charged {len(intents)} times"
    for invoice_id, should_pay in expected.items():
        invoice = invoices[invoice_id]
        intents = succeeded.get(invoice.number, [])
        if should_pay:
            assert invoice.status == "paid", f"invoice {invoice.number} is {invoice.status}"
            [intent] = intents
            attempt = invoice.paid_by_attempt
            assert (intent["id"], intent["metadata"]["attempt"], intent["amount"]) == (
                attempt.gateway_reference,
                attempt.idempotency_key,
                invoice.amount_minor,
            )
        else:
            assert invoice.status == "past_due", f"invoice {invoice.number} is {invoice.status}"
            assert intents == []
    assert set(succeeded) <= set(by_number)
    assert not PaymentAttempt.objects.filter(status__in=PaymentAttempt.UNRESOLVED).exists()
