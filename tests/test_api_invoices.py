"""Invoices over the API: list (filtered, paginated), detail and attempts, and "Pay now"."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import AuditEvent
from invoices.models import Invoice
from payments.services import charge_order_set, payment_method_add_card, payment_method_add_sepa_debit
from tests.factories import (
    AccountFactory,
    InvoiceFactory,
    MembershipFactory,
    PaymentAttemptFactory,
    PaymentMethodFactory,
    TokenFactory,
)

pytestmark = pytest.mark.django_db

SUCCEEDS = "4242424242424242"
DECLINES = "4000000000000002"


@pytest.fixture
def membership():
    return MembershipFactory()


@pytest.fixture
def client(membership):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {TokenFactory(user=membership.user).key}")
    return client


def _card(membership, number):
    return payment_method_add_card(
        account=membership.account,
        actor=membership.user,
        number=number,
        exp_month=12,
        exp_year=2035,
        cvc="123",
    )


def test_filtering_by_status(client, membership):
    open_invoice = InvoiceFactory(account=membership.account)
    past_due = InvoiceFactory(account=membership.account, status="past_due")
    InvoiceFactory()  # another account's
    assert {i["id"] for i in client.get("/api/invoices/").json()["results"]} == {open_invoice.pk, past_due.pk}
    assert [i["id"] for i in client.get("/api/invoices/?status=past_due").json()["results"]] == [past_due.pk]
    assert client.get("/api/invoices/?status=paid").json()["count"] == 0
    response = client.get("/api/invoices/?status=late")
    assert response.status_code == 400
    assert "status" in response.json()["errors"]


def test_the_list_is_paginated(client, membership):
    Invoice.objects.bulk_create(
        Invoice(
            account=membership.account,
            number=f"P-{n:03d}",
            currency="USD",
            amount_minor=100 + n,
            issued_on=timezone.localdate(),
            due_on=timezone.localdate(),
        )
        for n in range(51)
    )
    first = client.get("/api/invoices/").json()
    assert first["count"] == 51
    assert len(first["results"]) == 50
    second = client.get(first["next"]).json()
    assert len(second["results"]) == 1
    assert client.get("/api/invoices/?page=3").status_code == 404


def test_money_follows_the_currencys_rules(client, membership):
    for currency, amount, shown in [
        ("JPY", 1200, "¥1,200"),
        ("KWD", 12345, "KWD12.345"),
        ("USD", 12500, "$125.00"),
    ]:
        InvoiceFactory(
            account=membership.account, currency=currency, amount_minor=amount, number=f"M-{currency}"
        )
    shown_by_number = {
        i["number"]: (i["amount_minor"], i["amount_display"])
        for i in client.get("/api/invoices/").json()["results"]
    }
    assert shown_by_number["M-JPY"] == (1200, "¥1,200")
    assert shown_by_number["M-KWD"][0] == 12345
    assert "12.345" in shown_by_number["M-KWD"][1]
    assert shown_by_number["M-USD"] == (12500, "$125.00")


def test_an_invoice_with_its_attempts(client, membership):
    invoice = InvoiceFactory(account=membership.account)
    method = PaymentMethodFactory(account=membership.account)
    PaymentAttemptFactory(invoice=invoice, method=method, sequence=1)
    PaymentAttemptFactory(
        invoice=invoice,
        method=None,
        sequence=2,
        status="skipped",
        idempotency_key=None,
        skip_reason="expired",
        decline_code="",
        decline_class="",
        position=None,
    )
    body = client.get(f"/api/invoices/{invoice.pk}/").json()
    assert [(a["sequence"], a["status"]) for a in body["attempts"]] == [(1, "failed"), (2, "skipped")]
    assert body["attempts"][0]["method"] == {
        "id": method.pk,
        "kind": "card",
        "label": "Visa •••• 4242",
        "status": "active",
    }
    assert body["attempts"][1]["skip_reason_display"] == "The method had expired"
    attempts = client.get(f"/api/invoices/{invoice.pk}/attempts/").json()
    assert attempts["count"] == 2
    assert attempts["results"] == body["attempts"]
    assert "idempotency_key" not in body["attempts"][0]


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def _invoice_with_attempts(account, attempts=3):
    invoice = InvoiceFactory(account=account)
    for sequence in range(1, attempts + 1):
        PaymentAttemptFactory(invoice=invoice, sequence=sequence)
    return invoice


def test_list_queries_do_not_grow_with_rows(client, membership):
    invoice = _invoice_with_attempts(membership.account, attempts=1)
    few_invoices = _queries(client, "/api/invoices/")
    few_attempts = _queries(client, f"/api/invoices/{invoice.pk}/attempts/")
    for _ in range(12):
        _invoice_with_attempts(membership.account)
    for sequence in range(2, 15):
        PaymentAttemptFactory(invoice=invoice, sequence=sequence)
    assert _queries(client, "/api/invoices/") == few_invoices
    assert _queries(client, f"/api/invoices/{invoice.pk}/attempts/") == few_attempts
    # Token, membership, count, invoices, their attempts with methods, their refunds.
    assert few_invoices <= 6
    assert few_attempts <= 5


def test_accounts_list_queries_do_not_grow(client, membership):
    before = _queries(client, "/api/accounts/")
    for _ in range(10):
        MembershipFactory(user=membership.user, account=AccountFactory())
    assert _queries(client, "/api/accounts/") == before


# Pay now: the same settlement code as the scheduled run, with the sandbox gateway.


def test_pay_now_down_the_charge_order(client, membership):
    declining, succeeding = _card(membership, DECLINES), _card(membership, SUCCEEDS)
    invoice = InvoiceFactory(account=membership.account)
    response = client.post(f"/api/invoices/{invoice.pk}/pay/", format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["outcome"] == "paid"
    assert body["paid_by_backup"] is True
    assert body["invoice"]["status"] == "paid"
    assert body["invoice"]["paid_by_method"]["id"] == succeeding.pk
    assert [a["method"]["id"] for a in body["invoice"]["attempts"]] == [declining.pk, succeeding.pk]
    assert AuditEvent.objects.filter(
        account=membership.account, action="invoice.pay_now", actor=membership.user
    ).exists()
    # Nothing left to pay: a conflict, and nothing charged.
    again = client.post(f"/api/invoices/{invoice.pk}/pay/", format="json")
    assert again.status_code == 409
    assert again.json()["code"] == "not_collectable"
    assert invoice.attempts.count() == 2


def test_pay_now_with_a_chosen_method(client, membership):
    primary, other = _card(membership, DECLINES), _card(membership, SUCCEEDS)
    invoice = InvoiceFactory(account=membership.account)
    body = client.post(f"/api/invoices/{invoice.pk}/pay/", {"method": other.pk}, format="json").json()
    assert body["outcome"] == "paid"
    assert [a["method"]["id"] for a in body["invoice"]["attempts"]] == [other.pk]
    assert primary.attempts.count() == 0


def test_a_method_that_cannot_pay_is_a_skip_not_a_decline(client, membership):
    sepa = payment_method_add_sepa_debit(
        account=membership.account, actor=None, iban="DE89370400440532013000", account_holder="Test Holder"
    )
    invoice = InvoiceFactory(account=membership.account, currency="USD")
    response = client.post(f"/api/invoices/{invoice.pk}/pay/", {"method": sepa.pk}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["outcome"] == "not_charged"
    assert body["message"] == f"Nothing was charged: {sepa.label} can't pay USD invoices."


def test_a_decline_is_a_result_not_an_error(client, membership):
    _card(membership, DECLINES)
    invoice = InvoiceFactory(account=membership.account)
    response = client.post(f"/api/invoices/{invoice.pk}/pay/", {"method": None}, format="json")
    assert response.status_code == 200
    assert response.json()["outcome"] == "declined"
    assert response.json()["message"]


def test_a_clearing_bank_debit_is_accepted_not_done(client):
    membership = MembershipFactory(account__currency="EUR")
    client.credentials(HTTP_AUTHORIZATION=f"Token {TokenFactory(user=membership.user).key}")
    payment_method_add_sepa_debit(
        account=membership.account, actor=membership.user, iban="DE89370400440532013000", account_holder="Jo"
    )
    invoice = InvoiceFactory(account=membership.account)
    response = client.post(f"/api/invoices/{invoice.pk}/pay/", format="json")
    assert response.status_code == 202
    assert response.json()["outcome"] == "pending"


def test_a_removed_or_foreign_method_is_a_400_and_nothing_is_charged(client, membership):
    removed = _card(membership, SUCCEEDS)
    removed.status, removed.removed_at = "removed", timezone.now()
    removed.save()
    foreign = PaymentMethodFactory()
    invoice = InvoiceFactory(account=membership.account)
    for method, message in [
        (removed, "has been removed"),
        (foreign, "does not exist"),
        (10**12, "does not exist"),
    ]:
        pk = getattr(method, "pk", method)
        response = client.post(f"/api/invoices/{invoice.pk}/pay/", {"method": pk}, format="json")
        assert response.status_code == 400
        assert message in response.json()["errors"]["method"][0]
    assert invoice.attempts.count() == 0


def test_a_void_invoice_is_not_paid(client, membership):
    charge_order_set(account=membership.account, actor=None, method_ids=[_card(membership, SUCCEEDS).pk])
    invoice = InvoiceFactory(account=membership.account, status="void", voided_at=timezone.now())
    response = client.post(f"/api/invoices/{invoice.pk}/pay/", format="json")
    assert response.status_code == 409
    assert invoice.attempts.count() == 0
