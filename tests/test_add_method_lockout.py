"""The card-testing pause: only details the gateway refused count; typing mistakes are shown on the
form, always; the page says how long the wait is; support sees the pause and lifts it, audited."""

import datetime

import pytest
import time_machine
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import AuditEvent, Membership
from payments.models import PaymentMethod
from payments.ratelimit import add_method_blocked, add_method_failure_record
from tests.factories import MembershipFactory, SupportUserFactory, UserFactory

pytestmark = pytest.mark.django_db

# Luhn-valid, but no test number of the sandbox's: the gateway refuses it, as it would a stolen card.
REAL_CARD = "4539 1488 0343 6467"
ADD_CARD = reverse("payment_method_add", args=["card"])
ADD_SEPA = reverse("payment_method_add", args=["sepa"])


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def owner(client, settings):
    settings.BILLING_ADD_METHOD_FAILURES_PER_HOUR = 5
    membership = MembershipFactory(role=Membership.Role.OWNER, account__currency="EUR")
    client.force_login(membership.user)
    return membership


def card(client, **overrides):
    data = {"number": "4242 4242 4242 4242", "expiry": "12/34", "cvc": "123", "add_to_order": "on"}
    return client.post(ADD_CARD, {**data, **overrides})


TYPING_MISTAKES = [
    (ADD_CARD, {}, "number"),  # an empty form
    (ADD_CARD, {"number": "4242 4242 4242 4241", "expiry": "12/34", "cvc": "123"}, "number"),
    (ADD_CARD, {"number": "4242 4242 4242 4243", "expiry": "12/34", "cvc": "123"}, "number"),
    (ADD_CARD, {"number": "4242 4242 4242 4242", "expiry": "01/20", "cvc": "123"}, "expiry"),
    (ADD_SEPA, {"account_holder": "Erika Muster", "iban": "DE89 3704 0044 0532 0130 00"}, "mandate"),
]


def test_typing_mistakes_are_field_errors_every_time_and_never_lock_the_account(client, owner):
    for _round in range(2):  # ten mistakes, twice the limit
        for url, data, field in TYPING_MISTAKES:
            response = client.post(url, data)
            assert response.status_code == 200, (url, data)
            assert f'id="id_{field}_error"' in response.content.decode()
    assert not add_method_blocked(account_id=owner.account_id)
    response = card(client)
    assert response.status_code == 302
    assert PaymentMethod.objects.filter(account=owner.account).count() == 1


def test_refusals_by_the_gateway_pause_adding_and_the_page_says_for_how_long(client, owner):
    for _ in range(4):
        response = card(client, number=REAL_CARD)
        assert response.status_code == 200
        assert "is not a test card" in response.content.decode()
    blocked = card(client, number=REAL_CARD)
    assert blocked.status_code == 429
    assert "You can add a payment method again in 60 minutes." in blocked.content.decode()
    with time_machine.travel(timezone.now() + datetime.timedelta(minutes=18, seconds=30)):
        page = client.get(ADD_CARD)
        assert page.status_code == 429
        assert "You can add a payment method again in 42 minutes." in page.content.decode()
        listing = client.get(reverse("payment_methods")).content.decode()
        assert "You can add a payment method again in 42 minutes." in listing
    with time_machine.travel(timezone.now() + datetime.timedelta(minutes=61)):
        assert client.get(ADD_CARD).status_code == 200


def test_a_typing_mistake_during_the_pause_is_still_shown_on_its_field(client, owner):
    for _ in range(5):
        add_method_failure_record(account_id=owner.account_id)
    response = card(client, number="4242 4242 4242 4241")
    assert response.status_code == 200
    assert 'id="id_number_error"' in response.content.decode()
    # Good details wait for the pause to end: they would reach the gateway.
    assert card(client).status_code == 429
    assert not PaymentMethod.objects.filter(account=owner.account).exists()


def test_the_api_counts_only_the_gateways_refusals(owner, settings):
    settings.BILLING_ADD_METHOD_FAILURES_PER_HOUR = 2
    api = APIClient()
    api.force_authenticate(owner.user)
    url = "/api/payment-methods/"
    body = {"kind": "card", "exp_month": 12, "exp_year": 2034, "cvc": "123"}
    for _ in range(3):
        assert api.post(url, {**body, "number": "4242424242424241"}, format="json").status_code == 400
    assert not add_method_blocked(account_id=owner.account_id)
    for _ in range(2):
        assert api.post(url, {**body, "number": REAL_CARD.replace(" ", "")}, format="json").status_code == 400
    assert api.post(url, {**body, "number": "4242424242424242"}, format="json").status_code == 429


@pytest.fixture
def paused(owner):
    for _ in range(5):
        add_method_failure_record(account_id=owner.account_id)
    assert add_method_blocked(account_id=owner.account_id)
    return owner


def test_support_sees_the_pause_and_lifts_it_audited(client, paused):
    account = paused.account
    support = SupportUserFactory(username="sam")
    client.force_login(support)
    page = client.get(reverse("admin:accounts_account_change", args=[account.pk])).content.decode()
    assert "Paused until" in page and "(refused in the last hour: 5)" in page
    lift_url = reverse("admin:accounts_account_lift_add_block", args=[account.pk])
    assert lift_url in page
    confirm = client.get(lift_url)
    assert confirm.status_code == 200 and "paused until" in confirm.content.decode()
    assert add_method_blocked(account_id=account.pk)  # asking changes nothing

    response = client.post(lift_url, follow=True)
    assert f"{account.name} can add payment methods again." in response.content.decode()
    assert not add_method_blocked(account_id=account.pk)
    event = AuditEvent.objects.get(account=account, action=AuditEvent.Action.ADD_BLOCK_LIFTED)
    assert event.actor_label == "staff: sam"
    assert event.before["refusals"] == 5 and event.after == {"blocked_until": None}
    page = client.get(reverse("admin:accounts_account_change", args=[account.pk])).content.decode()
    assert "Open (refused in the last hour: 0)." in page

    # The customer can add a method again at once.
    client.force_login(paused.user)
    assert client.get(ADD_CARD).status_code == 200


def test_lifting_an_open_account_records_nothing(client, owner):
    client.force_login(SupportUserFactory())
    lift_url = reverse("admin:accounts_account_lift_add_block", args=[owner.account_id])
    client.post(lift_url)
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.ADD_BLOCK_LIFTED).exists()


def test_only_staff_reach_the_lift(client, paused):
    client.force_login(UserFactory())
    response = client.post(reverse("admin:accounts_account_lift_add_block", args=[paused.account_id]))
    assert response.status_code == 302 and "/login/" in response.url
    assert add_method_blocked(account_id=paused.account_id)
