"""localstripe, a fake Stripe server, for the tests that need Stripe's state: started on 127.0.0.1 at
a free port with its data in memory (fresh for each test module), and stopped after it.

The ``localstripe`` and ``stripe_gateway`` fixtures (tests/conftest.py) use it. Besides Stripe's API,
localstripe serves a fake Stripe.js at ``/js.stripe.com/v3/`` (the Card Element, confirmCardSetup and
confirmSepaDebitSetup), for the browser tests."""

import contextlib
import json
import socket
import subprocess
import sys
import time
import urllib.request

import stripe

from tests import utils

KEYS = {
    "STRIPE_SECRET_KEY": "sk_test_localstripe",
    "STRIPE_PUBLISHABLE_KEY": "pk_test_localstripe",
    "STRIPE_WEBHOOK_SECRET": "whsec_localstripe",
}

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


@contextlib.contextmanager
def running_localstripe():
    """A fresh localstripe for the ``with`` block; yields its base address."""
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


def use_localstripe(settings, base: str) -> stripe.StripeClient:
    """Make the Stripe gateway, pointed at ``base``, the active one; returns a client of its own for
    the test to look at Stripe's side with."""
    for name, value in KEYS.items():
        setattr(settings, name, value)
    settings.STRIPE_API_BASE = base
    settings.STRIPE_JS_URL = f"{base}/js.stripe.com/v3/"
    settings.PAYMENT_GATEWAY = "stripe"
    return stripe.StripeClient(KEYS["STRIPE_SECRET_KEY"], base_addresses={"api": base}, max_network_retries=0)


def settle(base: str) -> dict:
    """Run ``settle_invoices`` in its own process with the Stripe gateway pointed at ``base``."""
    env = utils.command_env(PAYMENT_GATEWAY="stripe", STRIPE_API_BASE=base, **KEYS)
    proc = utils.manage("settle_invoices", "--json", env=env)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return json.loads(out)


def intents_for(client: stripe.StripeClient, invoice_number: str) -> list:
    """Stripe's PaymentIntents for one of our invoices (by the metadata the gateway sets)."""
    intents = client.v1.payment_intents.list(params={"limit": 100}).data
    return [intent for intent in intents if intent.to_dict()["metadata"].get("invoice") == invoice_number]
