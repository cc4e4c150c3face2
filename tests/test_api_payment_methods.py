"""Payment methods over the API: list, read, add (tokenised, never echoed), remove; the add limit."""

import json
import logging

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.models import AuditEvent
from payments.models import GatewayCustomer, PaymentMethod
from payments.ratelimit import add_method_failure_record
from payments.sandbox.models import SandboxToken
from payments.services import charge_order_ids
from tests.factories import (
    ChargeOrderEntryFactory,
    MembershipFactory,
    PaymentMethodFactory,
    TokenFactory,
)

pytestmark = pytest.mark.django_db

URL = "/api/payment-methods/"
CARD = {"kind": "card", "number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2035, "cvc": "123"}
SEPA = {"kind": "sepa_debit", "iban": "DE89 3704 0044 0532 0130 00", "account_holder": "Jane Doe"}
ACH = {
    "kind": "ach_debit",
    "routing_number": "110000000",
    "account_number": "000123456789",
    "account_holder": "Jane Doe",
}
SECRETS = ["4242424242424242", "4242 4242 4242 4242", "DE89370400440532013000", "000123456789"]


@pytest.fixture(autouse=True)
def _fresh_limits():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def membership():
    return MembershipFactory()


@pytest.fixture
def client(membership):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {TokenFactory(user=membership.user).key}")
    return client


@pytest.mark.parametrize(
    ("details", "label", "kind"),
    [
        (CARD, "Visa •••• 4242", "card"),
        (SEPA, "Sandbox Bank •••• 3000", "sepa_debit"),
        (ACH, "Sandbox Bank •••• 6789", "ach_debit"),
    ],
)
def test_adding_a_method_tokenises_it_and_echoes_nothing(client, membership, caplog, details, label, kind):
    caplog.set_level(logging.DEBUG)
    response = client.post(URL, details, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["kind"] == kind
    assert body["label"] == label
    assert body["position"] == 1
    assert body["position_label"] == "Primary"
    method = PaymentMethod.objects.get(pk=body["id"], account=membership.account)
    assert method.token.startswith("tok_sandbox_")
    sent_back = json.dumps(body)
    stored = json.dumps([list(row) for row in PaymentMethod.objects.values_list()], default=str)
    assert "cvc" not in body
    for secret in SECRETS:
        assert secret not in sent_back
        assert secret not in stored
        assert secret not in caplog.text
    assert "token" not in body
    assert AuditEvent.objects.filter(account=membership.account, action="method.added").count() == 1


def test_a_new_method_goes_last_in_the_order_unless_asked_not_to(client, membership):
    first = client.post(URL, CARD, format="json").json()
    second = client.post(URL, {**CARD, "number": "5555555555554444"}, format="json").json()
    third = client.post(URL, {**SEPA, "add_to_order": False}, format="json").json()
    assert charge_order_ids(account=membership.account) == [first["id"], second["id"]]
    assert third["position"] is None


def test_refused_details_are_field_errors_without_the_number(client, membership):
    response = client.post(URL, {**CARD, "number": "4242424242424241"}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["errors"] == {"number": ["This card number is not valid. Check it for a typing mistake."]}
    assert "4242424242424241" not in response.content.decode()
    assert not PaymentMethod.objects.filter(account=membership.account).exists()


@pytest.mark.parametrize(
    ("details", "field"),
    [
        ({"number": "4242424242424242"}, "kind"),
        ({**CARD, "kind": "paypal"}, "kind"),
        ({**CARD, "exp_month": 13}, "exp_month"),
        ({"kind": "card", "exp_month": 1, "exp_year": 2030, "cvc": "1"}, "number"),
        ({**SEPA, "iban": "DE00370400440532013000"}, "iban"),
        ({**ACH, "routing_number": "123456789"}, "routing_number"),
    ],
)
def test_malformed_requests_name_the_field(client, details, field):
    response = client.post(URL, details, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_refusals_are_throttled_with_the_consoles_limit(client, membership, settings):
    settings.BILLING_ADD_METHOD_FAILURES_PER_HOUR = 3
    for _ in range(3):
        assert client.post(URL, {**CARD, "number": REAL_CARD}, format="json").status_code == 400
    response = client.post(URL, CARD, format="json")
    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    assert not PaymentMethod.objects.filter(account=membership.account).exists()


def test_console_failures_count_for_the_api(client, membership, settings):
    settings.BILLING_ADD_METHOD_FAILURES_PER_HOUR = 2
    for _ in range(2):
        add_method_failure_record(account_id=membership.account_id)
    assert client.post(URL, CARD, format="json").status_code == 429
    # Reading is not limited.
    assert client.get(URL).status_code == 200


def test_successes_do_not_count(client, settings):
    settings.BILLING_ADD_METHOD_FAILURES_PER_HOUR = 1
    for number in ["4242424242424242", "5555555555554444"]:
        assert client.post(URL, {**CARD, "number": number}, format="json").status_code == 201


def test_removing_a_method_promotes_the_first_backup(client, membership):
    primary = ChargeOrderEntryFactory(method__account=membership.account, position=1).method
    backup = ChargeOrderEntryFactory(method__account=membership.account, position=2).method
    response = client.delete(f"{URL}{primary.pk}/")
    assert response.status_code == 204
    primary.refresh_from_db()
    assert primary.status == "removed"
    assert charge_order_ids(account=membership.account) == [backup.pk]
    assert AuditEvent.objects.filter(account=membership.account, action="method.removed").exists()
    # A removed method is gone from the API.
    assert client.get(f"{URL}{primary.pk}/").status_code == 404
    assert client.delete(f"{URL}{primary.pk}/").status_code == 404
    assert [m["id"] for m in client.get(URL).json()["results"]] == [backup.pk]


def test_reading_a_method(client, membership):
    method = PaymentMethodFactory(account=membership.account, blocked_reason="lost_card")
    body = client.get(f"{URL}{method.pk}/").json()
    assert body["id"] == method.pk
    assert body["last4"] == "4242"
    assert body["position"] is None
    assert body["expires_on"] == f"{method.exp_year}-12-31"
    assert "token" not in body and "fingerprint" not in body


def _count_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_list_costs_the_same_queries_for_1_or_30_methods(
    client, membership, django_assert_max_num_queries
):
    ChargeOrderEntryFactory(method__account=membership.account)
    one = _count_queries(client, URL)
    for _ in range(29):
        PaymentMethodFactory(account=membership.account)
    with django_assert_max_num_queries(one):
        response = client.get(URL)
    assert response.json()["count"] == 30
    # Token, membership, count, page.
    assert one <= 4


# Luhn-valid, but no test number of the sandbox's: as a real card would be.
REAL_CARD = "4539148803436467"


def test_a_real_card_number_is_refused_as_not_a_test_card_and_nothing_is_kept(client, membership, caplog):
    caplog.set_level(logging.DEBUG)
    response = client.post(URL, {**CARD, "number": REAL_CARD}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert list(body["errors"]) == ["number"]
    [message] = body["errors"]["number"]
    assert message.startswith(
        "This card number is not a test card: the sandbox accepts only its test numbers"
    )
    assert REAL_CARD not in response.content.decode() and "6467" not in message
    assert REAL_CARD not in caplog.text
    assert not PaymentMethod.objects.filter(account=membership.account).exists()
    assert not SandboxToken.objects.exists()


@pytest.mark.parametrize(
    ("details", "field"),
    [
        ({**SEPA, "iban": "FR1420041010050500013M02606"}, "iban"),
        ({**ACH, "account_number": "9876543210"}, "account_number"),
    ],
)
def test_a_real_bank_account_is_refused_as_not_a_test_account(client, membership, details, field):
    response = client.post(URL, details, format="json")
    assert response.status_code == 400
    assert "is not a test account" in response.json()["errors"][field][0]
    assert not PaymentMethod.objects.filter(account=membership.account).exists()


def test_real_card_refusals_count_toward_the_limit(client, membership, settings):
    settings.BILLING_ADD_METHOD_FAILURES_PER_HOUR = 2
    for _ in range(2):
        assert client.post(URL, {**CARD, "number": REAL_CARD}, format="json").status_code == 400
    assert client.post(URL, CARD, format="json").status_code == 429


def test_methods_added_over_the_api_go_to_the_accounts_one_gateway_customer(client, membership):
    client.post(URL, CARD, format="json")
    client.post(URL, SEPA, format="json")
    [customer] = GatewayCustomer.objects.filter(account=membership.account)
    tokens = list(PaymentMethod.objects.filter(account=membership.account).values_list("token", flat=True))
    assert len(tokens) == 2
    assert set(SandboxToken.objects.filter(token__in=tokens).values_list("customer", flat=True)) == {
        customer.reference
    }
