"""A bank account that cannot pay the account's currency is kept only once the member confirms it
(the rule is settlement's own: PaymentMethod.kind_can_pay_currency)."""

import pytest
from django.core.cache import cache
from django.urls import reverse

from accounts.models import Membership
from payments.models import PaymentMethod
from payments.services import charge_order_ids
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db

SEPA = {
    "account_holder": "Erika Muster",
    "iban": "DE89 3704 0044 0532 0130 00",
    "mandate": "on",
    "add_to_order": "on",
}
ADD = reverse("payment_method_add", args=["sepa"])
CONFIRM = reverse("payment_method_add_confirm", args=["sepa"])


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()


@pytest.fixture
def owner(client):
    membership = MembershipFactory(role=Membership.Role.OWNER, account__currency="USD")
    client.force_login(membership.user)
    return membership


def test_the_rule_is_settlements():
    assert not PaymentMethod.kind_can_pay_currency("sepa_debit", "usd")
    assert PaymentMethod.kind_can_pay_currency("ach_debit", "USD")
    assert PaymentMethod.kind_can_pay_currency("card", "JPY")
    assert PaymentMethod(kind="sepa_debit").can_pay_currency("EUR")


def test_sepa_on_a_usd_account_asks_first_and_keeps_nothing_yet(client, owner):
    response = client.post(ADD, SEPA)
    assert response.url == CONFIRM
    assert not PaymentMethod.objects.exists()
    page = " ".join(client.get(CONFIRM).content.decode().split())
    assert "Add a method that cannot pay USD invoices?" in page
    assert (
        "Sandbox Bank •••• 3000 cannot pay USD invoices: SEPA Direct Debit pays only EUR invoices, and "
        "this account is billed in USD." in page
    )
    assert "DE89" not in page and "3704" not in page  # never the number


def test_add_it_anyway_keeps_it_as_asked(client, owner):
    client.post(ADD, SEPA)
    response = client.post(CONFIRM, {"action": "add"}, follow=True)
    method = PaymentMethod.objects.get(account=owner.account)
    assert method.kind == "sepa_debit"
    assert charge_order_ids(account=owner.account) == [method.pk]
    assert "Sandbox Bank •••• 3000 is now Primary." in response.content.decode()
    # Used once: a second confirmation finds nothing to add.
    assert client.post(CONFIRM, {"action": "add"}).url == ADD
    assert PaymentMethod.objects.count() == 1


def test_dont_add_it_keeps_nothing(client, owner):
    client.post(ADD, SEPA)
    response = client.post(CONFIRM, {"action": "cancel"}, follow=True)
    assert "Sandbox Bank •••• 3000 was not added." in response.content.decode()
    assert not PaymentMethod.objects.exists()


def test_a_method_in_the_accounts_currency_is_added_without_asking(client, owner):
    owner.account.currency = "EUR"
    owner.account.save(update_fields=["currency"])
    response = client.post(ADD, SEPA)
    assert response.url.startswith(reverse("payment_methods"))
    assert PaymentMethod.objects.filter(account=owner.account).count() == 1


def test_the_confirmation_belongs_to_the_account_that_asked(client, owner):
    client.post(ADD, SEPA)
    other = MembershipFactory(role=Membership.Role.OWNER, account__currency="USD")
    MembershipFactory(user=owner.user, account=other.account, role=Membership.Role.OWNER)
    client.post(reverse("switch_account"), {"account": other.account_id})
    assert client.get(CONFIRM).status_code == 302
    assert not PaymentMethod.objects.exists()
