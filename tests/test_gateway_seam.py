"""The gateway seam: gateways chosen by dotted path, one processor customer per account, methods
saved in two steps, charges with metadata, retrieve / find, and charges read page by page."""

import datetime
import io
import re

import pytest
import time_machine
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import transaction
from django.utils import timezone, translation

from invoices.models import PaymentAttempt
from invoices.reconciliation import CHARGED_NOT_RECORDED, differences
from invoices.settlement import settlement_run
from payments.customers import gateway_customer_reference
from payments.gateways import gateways_check, get_gateway
from payments.gateways.base import ChargeStatus, GatewayError, InvalidPaymentDetails
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


# Charges page by page ---------------------------------------------------------------------------


def _charges_at(gateway, minutes: list[int], start: datetime.datetime) -> None:
    token = card(gateway).token
    for n, minute in enumerate(minutes):
        with time_machine.travel(start + datetime.timedelta(minutes=minute), tick=False):
            pay(gateway, token, f"key-{n}")


def test_list_charges_pages_through_with_a_cursor_oldest_first(gateway):
    start = timezone.now()
    _charges_at(gateway, [0, 1, 1, 2, 3], start)  # two charges in one minute: the cursor breaks the tie
    keys, cursor, pages = [], "", 0
    while True:
        page = gateway.list_charges(cursor=cursor, limit=2)
        assert len(page.entries) <= 2
        keys += [entry.idempotency_key for entry in page.entries]
        pages += 1
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    assert keys == [f"key-{n}" for n in range(5)]
    assert pages == 3
    assert gateway.list_charges(limit=5).next_cursor == ""
    assert gateway.list_charges(limit=4).next_cursor != ""


def test_list_charges_since_a_moment(gateway):
    start = timezone.now()
    _charges_at(gateway, [0, 10, 20], start)
    page = gateway.list_charges(since=start + datetime.timedelta(minutes=10))
    assert [entry.idempotency_key for entry in page.entries] == ["key-1", "key-2"]
    page = gateway.list_charges(since=start + datetime.timedelta(minutes=10), limit=1)
    after = gateway.list_charges(since=start + datetime.timedelta(minutes=10), cursor=page.next_cursor)
    assert [e.idempotency_key for e in [*page.entries, *after.entries]] == ["key-1", "key-2"]
    assert gateway.list_charges(since=start + datetime.timedelta(minutes=30)).entries == []


def test_a_page_shows_cleared_debits_in_their_final_state(gateway):
    token = gateway.tokenize_sepa_debit(iban="DE35370400440532013002", account_holder="Erika").token
    assert pay(gateway, token, "debit", currency="EUR").status == PENDING
    [entry] = gateway.list_charges().entries
    assert (entry.status, entry.decline_code) == (ChargeStatus.FAILED, "account_closed")


@pytest.mark.parametrize("bad", [{"cursor": "not-a-cursor"}, {"limit": 0}, {"limit": 10_001}])
def test_list_charges_refuses_a_bad_cursor_or_limit(gateway, bad):
    with pytest.raises(GatewayError):
        gateway.list_charges(**bad)


def test_reconciliation_reads_every_page_and_honours_since(gateway):
    account = AccountFactory(currency="USD")
    MembershipFactory(account=account)
    utils.add_card(account)
    for _ in range(5):
        InvoiceFactory(account=account)
    settlement_run()
    assert SandboxCharge.objects.filter(status="succeeded").count() == 5
    pages = []
    real = gateway.list_charges

    def counted(**kwargs):
        pages.append(kwargs)
        return real(**kwargs)

    gateway.list_charges = counted
    assert list(differences(gateway=gateway, page_size=2)) == []
    assert [p["limit"] for p in pages] == [2, 2, 2] and pages[0]["cursor"] == ""
    # A stray charge is found on whichever page it falls; a window after it leaves it out.
    pay(gateway, card(gateway).token, "stray-1")
    found = list(differences(gateway=gateway, page_size=2))
    assert [(d.kind, d.idempotency_keys) for d in found] == [(CHARGED_NOT_RECORDED, ("stray-1",))]
    later = timezone.now() + datetime.timedelta(minutes=1)
    assert list(differences(gateway=gateway, since=later, page_size=2)) == []


def test_reconcile_payments_pages_and_takes_a_since():
    account = AccountFactory(currency="USD")
    MembershipFactory(account=account)
    utils.add_card(account)
    InvoiceFactory(account=account)
    InvoiceFactory(account=account)
    settlement_run()
    out = io.StringIO()
    call_command("reconcile_payments", "--page-size", "1", stdout=out)
    assert "No differences" in out.getvalue()
    pay(get_gateway(), card(get_gateway()).token, "stray-2")
    with pytest.raises(SystemExit) as exit_info:
        call_command("reconcile_payments", "--page-size", "1", stdout=io.StringIO())
    assert exit_info.value.code == 1
    tomorrow = (timezone.localdate() + datetime.timedelta(days=1)).isoformat()
    out = io.StringIO()
    call_command("reconcile_payments", "--since", tomorrow, stdout=out)
    assert "No differences" in out.getvalue()
