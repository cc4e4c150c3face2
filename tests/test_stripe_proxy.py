"""The proxy in front of localstripe honours Idempotency-Key as Stripe documents it, and the Stripe
gateway reads its answers as it would Stripe's: the same key and parameters replay the first response
(nothing new is charged); other parameters are a 400 idempotency error, and a call still running with
the key a 409, both unknown outcomes, never a second charge."""

import threading
import time

import pytest

from payments.gateways.base import ChargeStatus, GatewayUnavailable
from payments.gateways.stripe import StripeGateway
from tests import localstripe_server
from tests.stripe_proxy import StripeProxy, most_in_one_second

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

INTENTS = "/v1/payment_intents"


@pytest.fixture(scope="module")
def localstripe():
    with localstripe_server.running_localstripe() as base:
        yield base


@pytest.fixture
def proxy(localstripe):
    with StripeProxy(localstripe, hold=0.3) as proxy:
        yield proxy


@pytest.fixture
def card(localstripe):
    """A customer with a card that pays, made straight at the server."""
    client = localstripe_server.client(localstripe)
    customer = client.v1.customers.create(params={"name": "Proxy test"})
    method = client.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": localstripe_server.SUCCEEDS, "exp_month": 12, "exp_year": 2040, "cvc": "123"},
        }
    )
    client.v1.payment_methods.attach(method.id, params={"customer": customer.id})
    return customer.id, method.id


@pytest.fixture
def gateway(settings, proxy):
    for name, value in localstripe_server.KEYS.items():
        setattr(settings, name, value)
    settings.STRIPE_API_BASE = proxy.url
    settings.GATEWAY_MAX_REQUESTS_PER_SECOND = 1000
    return StripeGateway()


def _charge(gateway, card, key, amount=2500):
    customer, method = card
    return gateway.charge(
        customer=customer,
        method_token=method,
        amount_minor=amount,
        currency="USD",
        idempotency_key=key,
        metadata={"invoice": "INV-P1", "attempt": key},
        timeout=10,
    )


def _intents_with(localstripe, key):
    intents = localstripe_server.all_payment_intents(localstripe_server.client(localstripe))
    return [intent for intent in intents if intent["metadata"].get("attempt") == key]


def test_the_same_key_and_parameters_replay_the_first_response(gateway, card, proxy, localstripe):
    first = _charge(gateway, card, "att-P1-1")
    again = _charge(gateway, card, "att-P1-1")
    assert first == again and first.status == ChargeStatus.SUCCEEDED
    assert len(_intents_with(localstripe, "att-P1-1")) == 1
    creates = proxy.requests("POST", INTENTS)
    assert [(r.idempotency_key, r.status, r.replayed) for r in creates] == [
        ("att-P1-1", 200, False),
        ("att-P1-1", 200, True),
    ]
    assert creates[0].at <= creates[1].at


def test_the_same_key_with_other_parameters_is_an_idempotency_error_and_unknown(
    gateway, card, proxy, localstripe
):
    _charge(gateway, card, "att-P1-2")
    with pytest.raises(GatewayUnavailable, match="idempotency_error"):
        _charge(gateway, card, "att-P1-2", amount=9999)
    assert [r.status for r in proxy.requests("POST", INTENTS)] == [200, 400]
    assert len(_intents_with(localstripe, "att-P1-2")) == 1


def test_the_same_key_while_its_first_call_runs_is_a_conflict_and_unknown(gateway, card, proxy, localstripe):
    outcomes = []

    def call():
        try:
            outcomes.append(_charge(gateway, card, "att-P1-3").status)
        except GatewayUnavailable as exc:
            outcomes.append(str(exc))

    first = threading.Thread(target=call)
    first.start()
    while not proxy._running:  # until the first call is at the server
        time.sleep(0.005)
    call()
    first.join()
    assert sorted(map(str, outcomes))[0].startswith("Stripe: idempotency_error (409")
    assert ChargeStatus.SUCCEEDED in outcomes
    assert sorted(r.status for r in proxy.requests("POST", INTENTS)) == [200, 409]
    assert len(_intents_with(localstripe, "att-P1-3")) == 1


def test_reads_ignore_keys_and_every_request_is_logged_with_its_moment(gateway, card, proxy):
    result = _charge(gateway, card, "att-P1-4")
    assert gateway.retrieve(result.reference).reference == result.reference
    assert gateway.retrieve(result.reference).reference == result.reference
    log = proxy.requests()
    assert [(r.method, r.path, r.replayed) for r in log] == [
        ("POST", INTENTS, False),
        ("GET", f"{INTENTS}/{result.reference}", False),
        ("GET", f"{INTENTS}/{result.reference}", False),
    ]
    assert most_in_one_second([r.at for r in log]) == 3


def test_most_in_one_second_counts_any_window_of_one_second():
    assert most_in_one_second([]) == 0
    assert most_in_one_second([0.0, 0.5, 0.99, 1.0, 1.2]) == 4  # 0.5 to 1.2
    assert most_in_one_second([0.0, 1.0, 2.0]) == 1
