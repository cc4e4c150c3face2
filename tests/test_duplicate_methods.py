"""The same card or bank account twice: refused at entry by the gateway's fingerprint, in the console,
the API and every gateway's setup (payments.services), naming the method already on file."""

import pytest
from django.core.cache import cache
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import Membership
from payments.gateways import get_gateway
from payments.models import PaymentMethod
from payments.ratelimit import add_method_failures
from payments.services import DuplicatePaymentMethod, payment_method_setup_finish
from tests.factories import MembershipFactory
from tests.utils import SUCCEEDS, add_ach, add_card

pytestmark = pytest.mark.django_db

ACH = {
    "account_holder": "John Doe",
    "routing_number": "110000000",
    "account_number": "000123456789",
    "mandate": "on",
    "add_to_order": "on",
}


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()


@pytest.fixture
def owner(client):
    membership = MembershipFactory(role=Membership.Role.OWNER, account__currency="USD")
    client.force_login(membership.user)
    return membership


def test_the_sandbox_fingerprints_the_same_number_alike_and_others_apart():
    gateway = get_gateway()
    one = gateway.tokenize_card(number=SUCCEEDS, exp_month=1, exp_year=2040, cvc="123")
    again = gateway.tokenize_card(number="4242 4242 4242 4242", exp_month=6, exp_year=2041, cvc="999")
    other = gateway.tokenize_card(number="5555555555554444", exp_month=1, exp_year=2040, cvc="123")
    assert one.fingerprint and one.fingerprint == again.fingerprint != other.fingerprint
    assert one.token != again.token
    bank = gateway.tokenize_ach_debit(
        routing_number="110000000", account_number="000123456789", account_holder="J"
    )
    assert (
        bank.fingerprint
        == gateway.tokenize_ach_debit(
            routing_number="110000000", account_number="000123456789", account_holder="Someone else"
        ).fingerprint
    )


def test_the_same_us_bank_account_twice_is_refused_naming_the_one_on_file(client, owner):
    url = reverse("payment_method_add", args=["bank"])
    assert client.post(url, ACH).status_code == 302
    response = client.post(url, ACH)
    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [
        "This bank account is already on file as Sandbox Bank •••• 6789 (Primary)."
    ]
    assert "This bank account is already on file as Sandbox Bank •••• 6789 (Primary)." in (
        response.content.decode()
    )
    assert PaymentMethod.objects.filter(account=owner.account).count() == 1
    assert add_method_failures(account_id=owner.account_id) == 0  # not a refusal by the gateway


def test_the_same_card_with_another_expiry_is_refused(client, owner):
    existing = add_card(owner.account, SUCCEEDS, in_order=False)
    response = client.post(
        reverse("payment_method_add", args=["card"]),
        {"number": "4242 4242 4242 4242", "expiry": "03/33", "cvc": "321", "add_to_order": "on"},
    )
    assert response.context["form"].non_field_errors() == [
        "This card is already on file as Visa •••• 4242 (Not in the charge order)."
    ]
    assert list(PaymentMethod.objects.filter(account=owner.account)) == [existing]


def test_a_removed_method_or_another_accounts_may_be_added_again(client, owner):
    from payments.services import payment_method_remove

    payment_method_remove(method=add_ach(owner.account), actor=None)
    add_ach(MembershipFactory().account)
    assert client.post(reverse("payment_method_add", args=["bank"]), ACH).status_code == 302


def test_the_api_refuses_a_duplicate_with_409(owner):
    api = APIClient()
    api.force_authenticate(owner.user)
    body = {"kind": "card", "number": SUCCEEDS, "exp_month": 12, "exp_year": 2034, "cvc": "123"}
    assert api.post("/api/payment-methods/", body, format="json").status_code == 201
    response = api.post("/api/payment-methods/", body, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "duplicate_method"
    assert response.json()["detail"] == "This card is already on file as Visa •••• 4242 (Primary)."
    assert PaymentMethod.objects.filter(account=owner.account).count() == 1


def test_every_gateways_setup_finish_refuses_a_duplicate(owner):
    # The path a browser-collected method (Stripe's) takes: the refusal is in the service.
    gateway = get_gateway()
    first = gateway.tokenize_card(number=SUCCEEDS, exp_month=12, exp_year=2034, cvc="123")
    second = gateway.tokenize_card(number=SUCCEEDS, exp_month=12, exp_year=2034, cvc="123")
    common = {"account": owner.account, "actor": owner.user, "kind": "card"}
    payment_method_setup_finish(reference=first.token, **common)
    with pytest.raises(DuplicatePaymentMethod) as refused:
        payment_method_setup_finish(reference=second.token, **common)
    assert refused.value.existing.token == first.token
    assert PaymentMethod.objects.filter(account=owner.account).count() == 1
