"""Adding a card or bank account from the console: validation, tokenisation, the rate limit, secrecy."""

import io
import logging

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.urls import reverse

from accounts.models import Membership
from payments import services
from payments.gateways.base import InvalidPaymentDetails
from payments.models import GatewayCustomer, PaymentMethod
from payments.sandbox.models import SandboxToken
from payments.services import charge_order_ids
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db

CARD = "5555555555554444"


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def owner(client):
    membership = MembershipFactory(role=Membership.Role.OWNER)
    client.force_login(membership.user)
    return membership


def _add_card(client, **overrides):
    data = {"number": "5555 5555 5555 4444", "expiry": "12/34", "cvc": "123", "add_to_order": "on"}
    data.update(overrides)
    return client.post(reverse("payment_method_add", args=["card"]), data)


def test_adding_a_card_tokenises_it_and_ranks_it_last(client, owner):
    response = _add_card(client)
    assert response.status_code == 302
    method = PaymentMethod.objects.get(account=owner.account)
    assert (method.brand, method.last4, method.exp_month, method.exp_year) == ("Mastercard", "4444", 12, 2034)
    assert method.token.startswith("tok_")
    assert charge_order_ids(account=owner.account) == [method.pk]
    assert "is now Primary" in client.get(response.url).content.decode()


def test_a_card_kept_out_of_the_charge_order(client, owner):
    _add_card(client, add_to_order="")
    method = PaymentMethod.objects.get(account=owner.account)
    assert charge_order_ids(account=owner.account) == []
    assert method.is_active


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("number", "4242424242424241", "This card number is not valid"),
        ("number", "4242", "12 to 19 digits"),
        ("expiry", "13/30", "month must be a number from 1 to 12"),
        ("expiry", "01/20", "This card has expired"),
        ("expiry", "soon", "MM/YY"),
        ("cvc", "12", "3 or 4 digits"),
    ],
)
def test_invalid_details_are_explained_next_to_the_field(client, owner, field, value, message):
    response = _add_card(client, **{field: value})
    assert response.status_code == 200
    form = response.context["form"]
    assert list(form.errors) == [field]
    assert message in form.errors[field][0]
    body = response.content.decode()
    assert f'id="id_{field}_error"' in body
    assert not PaymentMethod.objects.exists()


def test_a_gateway_refusal_lands_on_the_field_it_names(client, owner, monkeypatch):
    def refuse(**kwargs):
        raise InvalidPaymentDetails("The bank says this expiry is wrong.", field="exp_year")

    monkeypatch.setattr(services, "payment_method_tokenize_card", refuse)
    response = _add_card(client)
    assert response.status_code == 200
    assert response.context["form"].errors == {"expiry": ["The bank says this expiry is wrong."]}


def test_the_typed_number_is_never_echoed_back(client, owner):
    response = _add_card(client, number="4000 0000 0000 9995", cvc="9")
    body = response.content.decode()
    assert "4000 0000 0000 9995" not in body and "4000000000009995" not in body


@pytest.mark.parametrize(
    ("kind", "data", "expected"),
    [
        (
            "sepa",
            {"account_holder": "Erika Muster", "iban": "DE89 3704 0044 0532 0130 00", "mandate": "on"},
            "3000",
        ),
        (
            "bank",
            {
                "account_holder": "John Doe",
                "routing_number": "110000000",
                "account_number": "000123456789",
                "mandate": "on",
            },
            "6789",
        ),
    ],
)
def test_adding_bank_accounts(client, owner, kind, data, expected):
    # Each in its own currency (one in another asks first: tests/test_add_method_currency.py).
    owner.account.currency = "EUR" if kind == "sepa" else "USD"
    owner.account.save(update_fields=["currency"])
    response = client.post(reverse("payment_method_add", args=[kind]), {**data, "add_to_order": "on"})
    assert response.status_code == 302, response.context["form"].errors if response.context else ""
    method = PaymentMethod.objects.get(account=owner.account)
    assert method.last4 == expected


def test_an_iban_with_a_typo_is_refused_next_to_the_field(client, owner):
    response = client.post(
        reverse("payment_method_add", args=["sepa"]),
        {"account_holder": "Erika", "iban": "DE89 3704 0044 0532 0130 01", "mandate": "on"},
    )
    assert list(response.context["form"].errors) == ["iban"]


def test_refusals_count_toward_the_limit_then_try_again_later(client, owner, settings):
    settings.BILLING_ADD_METHOD_FAILURES_PER_HOUR = 3
    assert _add_card(client, number=REAL_CARD).status_code == 200
    assert _add_card(client, number=REAL_CARD).status_code == 200
    blocked = _add_card(client, number=REAL_CARD)
    assert blocked.status_code == 429
    body = blocked.content.decode()
    assert "Try again later" in body
    assert "You can add a payment method again in 60 minutes." in body
    # Blocked even with good details, and the form itself is not offered.
    assert _add_card(client).status_code == 429
    assert client.get(reverse("payment_method_add", args=["card"])).status_code == 429
    assert not PaymentMethod.objects.exists()
    # Another account is not affected.
    other = MembershipFactory(role=Membership.Role.OWNER)
    client.force_login(other.user)
    assert client.get(reverse("payment_method_add", args=["card"])).status_code == 200


def test_the_card_number_is_in_no_database_and_no_log(client, owner, caplog):
    caplog.set_level(logging.DEBUG)
    _add_card(client, cvc="1")  # refused: the re-rendered page must not hold it either
    response = _add_card(client)
    assert response.status_code == 302
    assert _add_card(client, number="4000000000000002").status_code == 302
    dumps = []
    for database in ("default", "sandbox"):
        out = io.StringIO()
        call_command("dumpdata", database=database, stdout=out)
        dumps.append(out.getvalue())
    assert "Mastercard" in dumps[0]  # the dump is real
    for secret in (CARD, "5555 5555 5555 4444", "4000000000000002"):
        for dump in dumps:
            assert secret not in dump
        assert secret not in caplog.text


# Luhn-valid, but no test number of the sandbox's: as a real card would be.
REAL_CARD = "4539 1488 0343 6467"


def test_a_real_card_number_is_refused_as_not_a_test_card_and_nothing_is_kept(client, owner, caplog):
    caplog.set_level(logging.DEBUG)
    response = _add_card(client, number=REAL_CARD)
    assert response.status_code == 200
    form = response.context["form"]
    assert list(form.errors) == ["number"]
    assert (
        "This card number is not a test card: the sandbox accepts only its test numbers"
        in form.errors["number"][0]
    )
    body = response.content.decode()
    assert 'id="id_number_error"' in body and "is not a test card" in body
    for shown in (REAL_CARD, REAL_CARD.replace(" ", "")):
        assert shown not in body
    assert "6467" not in form.errors["number"][0]  # not even the last four
    assert REAL_CARD.replace(" ", "") not in caplog.text and REAL_CARD not in caplog.text
    assert not PaymentMethod.objects.exists()
    assert not SandboxToken.objects.exists()


@pytest.mark.parametrize(
    ("kind", "data", "field"),
    [
        (
            "sepa",
            {"account_holder": "Erika", "iban": "FR14 2004 1010 0505 0001 3M02 606", "mandate": "on"},
            "iban",
        ),
        (
            "bank",
            {
                "account_holder": "John",
                "routing_number": "110000000",
                "account_number": "9876543210",
                "mandate": "on",
            },
            "account_number",
        ),
    ],
)
def test_a_real_bank_account_is_refused_as_not_a_test_account(client, owner, kind, data, field):
    response = client.post(reverse("payment_method_add", args=[kind]), {**data, "add_to_order": "on"})
    assert response.status_code == 200
    form = response.context["form"]
    assert list(form.errors) == [field]
    assert "is not a test account" in form.errors[field][0]
    assert not PaymentMethod.objects.exists()
    assert not SandboxToken.objects.exists()


def test_a_real_card_number_counts_toward_the_limit(client, owner, settings):
    settings.BILLING_ADD_METHOD_FAILURES_PER_HOUR = 2
    assert _add_card(client, number=REAL_CARD).status_code == 200
    assert _add_card(client, number=REAL_CARD).status_code == 429
    assert not PaymentMethod.objects.exists()


def test_a_card_is_saved_to_the_accounts_gateway_customer(client, owner):
    client.get(reverse("payment_method_add", args=["card"]))
    customer = GatewayCustomer.objects.get(account=owner.account)
    assert _add_card(client).status_code == 302
    _add_card(client, number="4242 4242 4242 4242")
    assert GatewayCustomer.objects.filter(account=owner.account).count() == 1
    tokens = list(PaymentMethod.objects.filter(account=owner.account).values_list("token", flat=True))
    assert set(SandboxToken.objects.filter(token__in=tokens).values_list("customer", flat=True)) == {
        customer.reference
    }


def test_the_page_gets_the_gateways_setup(client, owner):
    response = client.get(reverse("payment_method_add", args=["sepa"]))
    setup = response.context["setup"]
    assert (setup.kind, setup.in_browser, setup.client_secret) == ("sepa_debit", False, "")
