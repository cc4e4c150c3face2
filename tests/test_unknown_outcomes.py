"""An attempt whose outcome is unknown is looked up before anything else, and repeated with its own
key only while the processor still keeps that key (Stripe: 24 hours). After that a repeat would be a
new charge: the attempt is resolved by lookup alone."""

import datetime

import pytest
import time_machine
from django.utils import timezone

from invoices.models import Invoice, PaymentAttempt
from invoices.settlement import settlement_run
from invoices.settlement.calls import KEY_LIFETIME_MARGIN
from payments.gateways import get_gateway
from payments.gateways.base import GatewayUnavailable
from payments.gateways.stripe import StripeGateway
from payments.sandbox.models import SandboxCharge
from tests import utils
from tests.factories import AccountFactory, InvoiceFactory, MembershipFactory

pytestmark = pytest.mark.django_db

LIFETIME = datetime.timedelta(hours=24)


def test_stripe_keeps_a_key_for_24_hours():
    assert StripeGateway.idempotency_key_lifetime == LIFETIME


@pytest.fixture
def gateway(monkeypatch):
    """The sandbox, forgetting keys as Stripe does, and recording the calls made to it."""
    gateway = get_gateway()
    monkeypatch.setattr(gateway, "idempotency_key_lifetime", LIFETIME)
    gateway.calls = []
    for name in ("retrieve", "find", "charge"):
        real = getattr(gateway, name)

        def recorded(*args, real=real, name=name, **kwargs):
            gateway.calls.append((name, kwargs.get("idempotency_key") or (args[0] if args else "")))
            return real(*args, **kwargs)

        monkeypatch.setattr(gateway, name, recorded)
    yield gateway
    del gateway.calls


@pytest.fixture
def unknown(gateway, monkeypatch):
    """An invoice whose first attempt's call never reached the gateway: its outcome is unknown."""
    account = AccountFactory(currency="USD")
    MembershipFactory(account=account)
    utils.add_card(account, utils.SUCCEEDS)
    invoice = InvoiceFactory(account=account)
    real_charge = gateway.charge

    def lost(**kwargs):
        raise GatewayUnavailable("connection reset")

    monkeypatch.setattr(gateway, "charge", lost)
    settlement_run()
    monkeypatch.setattr(gateway, "charge", real_charge)
    attempt = invoice.attempts.get()
    assert attempt.status == PaymentAttempt.Status.UNKNOWN
    assert not SandboxCharge.objects.exists()
    gateway.calls.clear()
    return invoice, attempt


def _later(attempt, delta):
    return time_machine.travel(attempt.created_at + delta, tick=False)


def test_while_the_key_is_kept_the_call_is_repeated_with_it_after_the_lookup(gateway, unknown):
    invoice, attempt = unknown
    with _later(attempt, LIFETIME - KEY_LIFETIME_MARGIN - datetime.timedelta(minutes=1)):
        settlement_run()
    assert [name for name, _ in gateway.calls] == ["find", "charge"]
    assert gateway.calls[1][1] == attempt.idempotency_key
    attempt.refresh_from_db()
    invoice.refresh_from_db()
    assert (attempt.status, invoice.status, invoice.paid_by_attempt_id) == ("succeeded", "paid", attempt.pk)
    assert SandboxCharge.objects.get().idempotency_key == attempt.idempotency_key


def test_once_the_key_is_forgotten_the_lookup_alone_resolves_it_and_a_new_attempt_pays(gateway, unknown):
    invoice, attempt = unknown
    with _later(attempt, LIFETIME + datetime.timedelta(hours=1)):
        settlement_run()
    attempt.refresh_from_db()
    invoice.refresh_from_db()
    assert attempt.status == PaymentAttempt.Status.CANCELED
    assert "no longer keeps its key" in attempt.message
    # Looked up, never repeated under the old key; the cascade went on with a new attempt of its own.
    assert gateway.calls[0] == ("find", attempt.idempotency_key)
    assert ("charge", attempt.idempotency_key) not in gateway.calls
    paid = invoice.paid_by_attempt
    assert invoice.status == Invoice.Status.PAID and paid.idempotency_key != attempt.idempotency_key
    assert list(SandboxCharge.objects.values_list("idempotency_key", flat=True)) == [paid.idempotency_key]


def test_once_the_key_is_forgotten_a_charge_the_lookup_finds_is_recorded(gateway, unknown, monkeypatch):
    """The charge went through after all (its reply was lost): the lookup finds it, a day later."""
    invoice, attempt = unknown
    with _later(attempt, datetime.timedelta(seconds=1)):
        gateway.charge(
            customer=invoice.account.gateway_customers.get().reference,
            method_token=attempt.method.token,
            amount_minor=attempt.amount_minor,
            currency=attempt.currency,
            idempotency_key=attempt.idempotency_key,
            metadata={"invoice": invoice.number, "attempt": attempt.idempotency_key},
            timeout=5,
        )
    gateway.calls.clear()
    with _later(attempt, LIFETIME * 3):
        settlement_run()
    assert [name for name, _ in gateway.calls] == ["find"]
    attempt.refresh_from_db()
    invoice.refresh_from_db()
    assert (attempt.status, invoice.status) == ("succeeded", "paid")
    assert SandboxCharge.objects.count() == 1


def test_once_the_key_is_forgotten_an_unanswered_lookup_leaves_it_unknown(gateway, unknown, monkeypatch):
    invoice, attempt = unknown

    def no_answer(*args, **kwargs):
        raise GatewayUnavailable("timed out")

    monkeypatch.setattr(gateway, "find", no_answer)
    with _later(attempt, LIFETIME * 2):
        settlement_run()
    attempt.refresh_from_db()
    assert attempt.status == PaymentAttempt.Status.UNKNOWN
    assert invoice.attempts.count() == 1 and not SandboxCharge.objects.exists()
    assert timezone.now() < attempt.created_at + LIFETIME
