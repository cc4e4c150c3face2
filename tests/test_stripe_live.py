"""The contract with Stripe itself: the gateway against Stripe's real test mode.

Runs only when ``STRIPE_TEST_SECRET_KEY`` (a test-mode key, sk_test_…) is set, and is skipped with that
reason otherwise, so no other run reaches the internet. It checks what the offline tests assume of
Stripe: a customer, a card saved with ``pm_card_visa``, a charge that succeeds, a decline with
``pm_card_chargeDeclined``, an idempotent replay (the same PaymentIntent, nothing charged twice) and
the idempotency error for other parameters, lookups by id and by the attempt key, and a refund.

    STRIPE_TEST_SECRET_KEY=sk_test_… pytest -m stripe_live tests/test_stripe_live.py
"""

import datetime
import os
import types
import uuid

import pytest
from django.utils import timezone

from payments.gateways.base import ChargeStatus, GatewayUnavailable
from payments.gateways.stripe import StripeGateway

SECRET_KEY = os.environ.get("STRIPE_TEST_SECRET_KEY", "")

pytestmark = [
    pytest.mark.stripe_live,
    pytest.mark.django_db,
    pytest.mark.skipif(
        not SECRET_KEY, reason="STRIPE_TEST_SECRET_KEY is not set: Stripe's test mode is not tried"
    ),
]


@pytest.fixture
def gateway(settings):
    assert SECRET_KEY.startswith(("sk_test_", "rk_test_")), "STRIPE_TEST_SECRET_KEY must be a test-mode key"
    settings.STRIPE_SECRET_KEY = SECRET_KEY
    settings.STRIPE_PUBLISHABLE_KEY = os.environ.get("STRIPE_TEST_PUBLISHABLE_KEY", "pk_test_contract")
    settings.STRIPE_WEBHOOK_SECRET = "whsec_contract"
    settings.STRIPE_API_BASE = "https://api.stripe.com"
    settings.GATEWAY_MAX_REQUESTS_PER_SECOND = 10
    return StripeGateway()


@pytest.fixture
def customer(gateway):
    return gateway.customer_create(account_id=0, name="Contract test", email="contract@example.com")


def _save(gateway, customer, test_method):
    """Save one of Stripe's test PaymentMethods (pm_card_visa …): attaching it makes a new one of
    the customer's, which is the one kept."""
    method = gateway.finish_setup(
        account=types.SimpleNamespace(pk=0), kind="card", customer=customer, reference=test_method
    )
    assert method.token != test_method
    return method


def _charge(gateway, customer, token, key, amount=1234):
    return gateway.charge(
        customer=customer,
        method_token=token,
        amount_minor=amount,
        currency="USD",
        idempotency_key=key,
        metadata={"invoice": "CONTRACT", "attempt": key},
        timeout=30,
    )


def test_a_saved_visa_is_charged_replayed_found_and_refunded(gateway, customer):
    method = _save(gateway, customer, "pm_card_visa")
    assert (method.kind, method.brand, method.last4) == ("card", "Visa", "4242")
    assert method.token.startswith("pm_") and method.fingerprint
    key = f"contract-{uuid.uuid4()}"
    since = timezone.now()

    paid = _charge(gateway, customer, method.token, key)
    assert paid.status == ChargeStatus.SUCCEEDED and paid.reference.startswith("pi_")
    # The same key and parameters: Stripe answers with the first PaymentIntent, charging nothing more.
    assert _charge(gateway, customer, method.token, key) == paid
    # The same key with other parameters: an idempotency error, an unknown outcome.
    with pytest.raises(GatewayUnavailable, match="idempotency_error"):
        _charge(gateway, customer, method.token, key, amount=4321)

    assert gateway.retrieve(paid.reference) == paid
    assert gateway.find(key, customer=customer, since=since) == paid
    assert gateway.find(f"contract-{uuid.uuid4()}", customer=customer, since=since) is None

    refund = gateway.refund(reference=paid.reference, idempotency_key=f"refund-{key}", amount_minor=234)
    assert (refund.charge_reference, refund.amount_minor, refund.currency) == (paid.reference, 234, "USD")


def test_a_declined_card_is_failed_with_stripes_decline_code(gateway, customer):
    method = _save(gateway, customer, "pm_card_chargeDeclined")
    result = _charge(gateway, customer, method.token, f"contract-{uuid.uuid4()}")
    assert (result.status, result.decline_code) == (ChargeStatus.FAILED, "generic_decline")
    assert result.reference.startswith("pi_")


def test_list_charges_pages_newest_first_since_a_moment(gateway, customer):
    method = _save(gateway, customer, "pm_card_visa")
    since = timezone.now()
    keys = [f"contract-{uuid.uuid4()}" for _ in range(2)]
    references = [_charge(gateway, customer, method.token, key).reference for key in keys]
    page = gateway.list_charges(since=since - datetime.timedelta(seconds=5), limit=1)
    assert page.next_cursor and len(page.entries) == 1
    seen, cursor = [], ""
    while True:
        page = gateway.list_charges(since=since - datetime.timedelta(seconds=5), cursor=cursor, limit=1)
        seen += [entry.reference for entry in page.entries]
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    assert [ref for ref in seen if ref in references] == references[::-1]
