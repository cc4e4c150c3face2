"""Reconciliation reads the gateway's charges page by page since a moment, never all at once."""

import datetime
import io

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from invoices.reconciliation import CHARGED_NOT_RECORDED, differences
from invoices.settlement import settlement_run
from payments.gateways import get_gateway
from payments.gateways.base import ChargeStatus, GatewayError
from payments.gateways.sandbox import SandboxGateway
from payments.sandbox.models import SandboxCharge
from tests import utils
from tests.factories import AccountFactory, InvoiceFactory, MembershipFactory

pytestmark = pytest.mark.django_db

PENDING = ChargeStatus.PENDING


@pytest.fixture
def gateway():
    return SandboxGateway()


def card(gateway, number=utils.SUCCEEDS):
    return gateway.tokenize_card(number=number, exp_month=12, exp_year=timezone.now().year + 2, cvc="123")


def pay(gateway, token, key, *, currency="USD"):
    return gateway.charge(
        customer="cus_sandbox_a",
        method_token=token,
        amount_minor=1000,
        currency=currency,
        idempotency_key=key,
        metadata={"invoice": "INV-1", "attempt": key},
        timeout=5,
    )


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
