"""The gateway seam: gateways chosen by dotted path, one processor customer per account, methods
saved in two steps, charges with metadata, retrieve / find, and charges read page by page."""

import io
import re

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import transaction
from django.utils import timezone, translation

from invoices.models import PaymentAttempt
from invoices.settlement import settlement_run
from payments import services
from payments.customers import gateway_customer_reference
from payments.gateways import gateways_check, get_gateway
from payments.gateways.base import (
    ChargeStatus,
    Gateway,
    GatewayError,
    InvalidPaymentDetails,
    SetupSession,
    TokenizedMethod,
)
from payments.gateways.sandbox import SandboxGateway
from payments.models import GatewayCustomer
from payments.sandbox import numbers
from payments.sandbox.models import SandboxCharge, SandboxCustomer, SandboxToken
from tests import utils
from tests.factories import AccountFactory, InvoiceFactory, MembershipFactory

pytestmark = pytest.mark.django_db

SUCCEEDED, PENDING = ChargeStatus.SUCCEEDED, ChargeStatus.PENDING


class OtherSandbox(SandboxGateway):
    """A second gateway class, loaded by its dotted path."""

    name = "other"


class BrowserOnly(Gateway):
    """A gateway that collects methods in the browser only, as a real processor does."""

    name = "browser"

    def customer_create(self, *, account_id, name="", email=""):
        return f"cus_browser_{account_id}"

    def start_setup(self, *, account, kind, customer):
        return SetupSession(kind=kind, client_secret="seti_1_secret_2", publishable_key="pk_test_1")

    def finish_setup(self, *, account, kind, customer, reference):
        return TokenizedMethod(
            kind=kind,
            token=reference,
            fingerprint="f" * 32,
            last4="4242",
            brand="Visa",
            exp_month=12,
            exp_year=2040,
        )

    def charge(self, **kwargs):
        raise NotImplementedError

    retrieve = find = list_charges = refund = refunds = cancel = saved_method = parse_event = charge


@pytest.fixture
def gateway():
    return SandboxGateway()


def card(gateway, number=utils.SUCCEEDS):
    return gateway.tokenize_card(number=number, exp_month=12, exp_year=timezone.now().year + 2, cvc="123")


def pay(gateway, token, key, *, currency="USD", on_reference=None):
    return gateway.charge(
        customer="cus_sandbox_a",
        method_token=token,
        amount_minor=1000,
        currency=currency,
        idempotency_key=key,
        metadata={"invoice": "INV-1", "attempt": key},
        timeout=5,
        on_reference=on_reference,
    )


# Gateways by dotted path ------------------------------------------------------------------------


def test_the_gateway_comes_from_its_dotted_path(settings):
    settings.PAYMENT_GATEWAYS = {
        "sandbox": "payments.gateways.sandbox.SandboxGateway",
        "other": "tests.test_gateway_seam.OtherSandbox",
    }
    assert type(get_gateway("other")) is OtherSandbox
    assert get_gateway("other") is get_gateway("other")  # one instance per process
    settings.PAYMENT_GATEWAY = "other"
    assert get_gateway().name == "other"
    assert gateways_check() == []


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("payments.gateways.nowhere.Gateway", "cannot import 'payments.gateways.nowhere.Gateway'"),
        ("payments.gateways.sandbox.NoSuchClass", "cannot import 'payments.gateways.sandbox.NoSuchClass'"),
        ("payments.gateways.base.ChargeResult", "is not a Gateway class"),
        ("tests.test_gateway_seam.OtherSandbox", "is the 'other' gateway, not 'sandbox'"),
    ],
)
def test_a_bad_path_fails_the_check_with_a_message_naming_it(settings, path, message):
    settings.PAYMENT_GATEWAYS = {"sandbox": path}
    with pytest.raises(ImproperlyConfigured, match=re.escape(message)):
        get_gateway()
    [error] = gateways_check()
    assert error.id == "payments.E001" and message in error.msg and "PAYMENT_GATEWAYS['sandbox']" in error.msg
    with pytest.raises(SystemCheckError, match=r"payments\.E001"):
        call_command("check", stdout=io.StringIO(), stderr=io.StringIO())


def test_a_gateway_name_without_a_path_is_refused(settings):
    with pytest.raises(ImproperlyConfigured, match="No payment gateway called 'paypal'"):
        get_gateway("paypal")
    settings.PAYMENT_GATEWAY = "paypal"
    assert [e.id for e in gateways_check()] == ["payments.E001"]


def test_only_the_sandbox_takes_numbers_on_the_server_a_browser_gateway_gets_its_setup(settings):
    settings.PAYMENT_GATEWAYS = {
        "sandbox": "payments.gateways.sandbox.SandboxGateway",
        "browser": "tests.test_gateway_seam.BrowserOnly",
    }
    settings.PAYMENT_GATEWAY = "browser"
    account = AccountFactory()
    with pytest.raises(GatewayError, match="collects payment details in the browser only"):
        services.payment_method_add_card(
            account=account, actor=None, number=utils.SUCCEEDS, exp_month=12, exp_year=2040, cvc="123"
        )
    assert not SandboxToken.objects.exists()
    setup = services.payment_method_setup_start(account=account, kind="card")
    assert (setup.in_browser, setup.client_secret, setup.publishable_key) == (
        True,
        "seti_1_secret_2",
        "pk_test_1",
    )
    method = services.payment_method_setup_finish(account=account, actor=None, kind="card", reference="pm_1")
    assert (method.gateway, method.token, method.label) == ("browser", "pm_1", "Visa •••• 4242")
    assert (
        GatewayCustomer.objects.get(account=account, gateway="browser").reference
        == f"cus_browser_{account.pk}"
    )


# One customer per account -----------------------------------------------------------------------


def test_an_accounts_customer_is_created_once_and_kept():
    account, other = AccountFactory(), AccountFactory()
    first = gateway_customer_reference(account_id=account.pk)
    assert first.startswith("cus_sandbox_")
    assert gateway_customer_reference(account_id=account.pk) == first
    assert gateway_customer_reference(account_id=other.pk) != first
    assert GatewayCustomer.objects.get(account=account).reference == first
    assert SandboxCustomer.objects.count() == 2
    assert SandboxCustomer.objects.get(reference=first).metadata == {"account": str(account.pk)}


def test_two_requests_racing_keep_the_first_customer(monkeypatch):
    account = AccountFactory()
    gateway = get_gateway()
    real = gateway.customer_create

    def another_request_wins(**kwargs):
        GatewayCustomer.objects.create(account=account, gateway="sandbox", reference="cus_sandbox_winner")
        return real(**kwargs)

    monkeypatch.setattr(gateway, "customer_create", another_request_wins)
    assert gateway_customer_reference(account_id=account.pk) == "cus_sandbox_winner"
    assert GatewayCustomer.objects.filter(account=account).count() == 1


def test_a_customer_is_never_created_inside_a_transaction():
    account = AccountFactory()
    with pytest.raises(RuntimeError, match="outside any database transaction"), transaction.atomic():
        gateway_customer_reference(account_id=account.pk)
    assert not SandboxCustomer.objects.exists()


# Saving a method in two steps -------------------------------------------------------------------


def test_the_sandbox_collects_on_the_server_and_finish_setup_saves_to_the_customer(gateway):
    account = AccountFactory()
    customer = gateway_customer_reference(account_id=account.pk)
    setup = gateway.start_setup(account=account, kind="card", customer=customer)
    assert (setup.kind, setup.in_browser, setup.client_secret, setup.publishable_key) == (
        "card",
        False,
        "",
        "",
    )
    collected = card(gateway)
    saved = gateway.finish_setup(account=account, kind="card", customer=customer, reference=collected.token)
    assert saved == collected
    assert SandboxToken.objects.get(token=collected.token).customer == customer
    # Saving it again to the same customer is the same method.
    assert (
        gateway.finish_setup(account=account, kind="card", customer=customer, reference=collected.token)
        == saved
    )


@pytest.mark.parametrize(
    ("kind", "customer", "reference"),
    [
        ("sepa_debit", "cus_sandbox_a", None),  # not a SEPA account
        ("card", "cus_sandbox_b", None),  # saved to another customer
        ("card", "cus_sandbox_a", "tok_sandbox_never_issued"),
    ],
)
def test_finish_setup_refuses_what_it_cannot_save(gateway, kind, customer, reference):
    token = card(gateway).token
    gateway.finish_setup(account=None, kind="card", customer="cus_sandbox_a", reference=token)
    with pytest.raises(InvalidPaymentDetails) as caught:
        gateway.finish_setup(account=None, kind=kind, customer=customer, reference=reference or token)
    assert caught.value.code == "setup_failed"
    assert SandboxToken.objects.get(token=token).customer == "cus_sandbox_a"


def test_the_not_a_test_card_message_is_translated_and_names_no_number():
    real = "4539148803436467"
    with pytest.raises(InvalidPaymentDetails) as english:
        numbers.card_behaviour(real)
    with translation.override("ja"), pytest.raises(InvalidPaymentDetails) as japanese:
        numbers.card_behaviour(real)
    assert japanese.value.message != english.value.message
    assert "テスト" in japanese.value.message
    for message in (english.value.message, japanese.value.message):
        assert real not in message and real[-4:] not in message


# Charges, retrieve and find ---------------------------------------------------------------------


def test_a_charge_keeps_its_customer_and_metadata_and_tells_its_reference(gateway):
    token = card(gateway).token
    told = []
    result = pay(gateway, token, "inv-1:1", on_reference=told.append)
    assert told == [result.reference]
    row = SandboxCharge.objects.get()
    assert (row.customer, row.metadata) == ("cus_sandbox_a", {"invoice": "INV-1", "attempt": "inv-1:1"})
    assert gateway.retrieve(result.reference) == result == gateway.find("inv-1:1")


def test_a_lost_reply_tells_no_reference(gateway):
    token = card(gateway, utils.REPLY_LOST).token
    told = []
    with pytest.raises(GatewayError):
        pay(gateway, token, "inv-1:1", on_reference=told.append)
    assert told == []
    assert gateway.find("inv-1:1").status == SUCCEEDED


def test_settlement_charges_the_accounts_customer_with_invoice_and_attempt(gateway):
    account = AccountFactory(currency="USD")
    MembershipFactory(account=account)
    utils.add_card(account)
    invoice = InvoiceFactory(account=account)
    settlement_run()
    attempt = invoice.attempts.get()
    charge = SandboxCharge.objects.get()
    assert charge.customer == GatewayCustomer.objects.get(account=account).reference
    assert charge.metadata == {"invoice": invoice.number, "attempt": attempt.idempotency_key}
    assert attempt.gateway_reference == charge.reference


@pytest.mark.parametrize("with_reference", [False, True])
def test_an_unresolved_attempt_is_looked_up_before_any_replay(monkeypatch, with_reference):
    account = AccountFactory(currency="USD")
    MembershipFactory(account=account)
    utils.add_card(account, utils.REPLY_LOST)
    invoice = InvoiceFactory(account=account)
    settlement_run()
    attempt = invoice.attempts.get()
    assert attempt.status == PaymentAttempt.Status.UNKNOWN
    if with_reference:  # as when the processor told the reference before the reply was lost
        PaymentAttempt.objects.filter(pk=attempt.pk).update(
            gateway_reference=SandboxCharge.objects.get().reference
        )
    gateway, calls = get_gateway(), []
    for name in ("retrieve", "find", "charge"):
        real = getattr(gateway, name)
        monkeypatch.setattr(
            gateway, name, lambda *a, real=real, name=name, **kw: calls.append(name) or real(*a, **kw)
        )
    settlement_run()
    assert calls == (["retrieve"] if with_reference else ["find"])
    invoice.refresh_from_db()
    assert invoice.status == invoice.Status.PAID
    assert SandboxCharge.objects.count() == 1
