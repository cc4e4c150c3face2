"""Saving a method with the Stripe gateway, against localstripe: the console's add pages (a SetupIntent
for Stripe.js, only its id posted back), their Content-Security-Policy, and the API's setup and add
endpoints. Chromium drives the same pages in tests/browser/test_stripe_browser.py."""

import pytest
from django.core.cache import cache
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import Membership
from payments.gateways.stripe.csp import content_security_policy
from payments.models import GatewayCustomer, PaymentMethod
from payments.ratelimit import add_method_failures
from payments.services import charge_order_ids
from tests.factories import MembershipFactory, TokenFactory

pytestmark = pytest.mark.django_db

CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2040, "cvc": "123"}
IBAN = "DE89370400440532013000"


@pytest.fixture(autouse=True)
def _fresh_limits():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def owner(client):
    membership = MembershipFactory(role=Membership.Role.OWNER)
    client.force_login(membership.user)
    return membership


def _csp(response) -> dict[str, list[str]]:
    policy = {}
    for directive in response["Content-Security-Policy"].split(";"):
        name, *sources = directive.split()
        policy[name] = sources
    return policy


def _setup_intent(client, page) -> str:
    """The SetupIntent a page asks Stripe.js to confirm, by its client secret."""
    secret = page.context["setup"].client_secret
    return secret.split("_secret_")[0]


def _confirm(stripe, setup_intent, **payment_method_data):
    # What Stripe.js does in the browser: the details go to Stripe with the SetupIntent.
    return stripe.v1.setup_intents.confirm(setup_intent, params={"payment_method_data": payment_method_data})


def test_the_card_page_hands_stripe_js_an_off_session_setup_intent_of_the_accounts_customer(
    client, owner, stripe_gateway
):
    page = client.get(reverse("payment_method_add", args=["card"]))
    assert page.status_code == 200
    assert page.templates[0].name == "payments/method_add_stripe.html"
    setup = page.context["setup"]
    intent = stripe_gateway.v1.setup_intents.retrieve(setup.reference)
    customer = GatewayCustomer.objects.get(account=owner.account, gateway="stripe").reference
    assert (intent.usage, intent.customer, intent.payment_method_types) == ("off_session", customer, ["card"])
    html = page.content.decode()
    assert f'data-client-secret="{setup.client_secret}"' in html
    assert 'data-publishable-key="pk_test_localstripe"' in html
    assert 'src="http://127.0.0.1:' in html and '/js.stripe.com/v3/"' in html
    assert "console/stripe-setup.js" in html
    # No field that could carry a number to us, and a plain word for those without JavaScript.
    assert 'name="number"' not in html and 'name="cvc"' not in html
    assert "Adding a card needs JavaScript" in html


def test_the_sepa_page_shows_the_mandate_and_there_is_no_us_bank_page(
    client, owner, stripe_gateway, settings
):
    settings.BILLING_COMPANY_NAME = "Acme Billing GmbH"
    page = client.get(reverse("payment_method_add", args=["sepa"]))
    html = page.content.decode()
    assert "you authorise (A) Acme Billing GmbH and Stripe, our payment service provider" in html
    assert "A refund must be claimed within 8 weeks" in html
    assert 'name="iban"' not in html
    intent = stripe_gateway.v1.setup_intents.retrieve(page.context["setup"].reference)
    assert intent.payment_method_types == ["sepa_debit"]
    bank = client.get(reverse("payment_method_add", args=["bank"]), follow=True)
    assert bank.redirect_chain == [(reverse("payment_methods"), 302)]
    assert "US bank accounts cannot be added with our payment processor." in bank.content.decode()
    assert client.post(reverse("payment_method_add", args=["bank"]), {}).status_code == 404


def test_a_confirmed_setup_intent_is_kept_with_what_stripe_reads_back(client, owner, stripe_gateway):
    page = client.get(reverse("payment_method_add", args=["card"]))
    setup_intent = _setup_intent(client, page)
    _confirm(stripe_gateway, setup_intent, type="card", card=CARD)

    response = client.post(page.request["PATH_INFO"], {"setup_intent": setup_intent, "add_to_order": "on"})

    assert response.status_code == 302
    method = PaymentMethod.objects.get(account=owner.account)
    saved = stripe_gateway.v1.payment_methods.retrieve(method.token)
    assert (method.gateway, method.kind, method.brand, method.last4) == ("stripe", "card", "Visa", "4242")
    assert (method.exp_month, method.exp_year) == (12, 2040)
    assert method.fingerprint == saved.card.fingerprint
    assert saved.customer == GatewayCustomer.objects.get(account=owner.account).reference
    assert charge_order_ids(account=owner.account) == [method.pk]
    assert "Visa •••• 4242 is now Primary" in client.get(response.url).content.decode()


def test_a_sepa_account_is_kept_by_its_setup_intent(client, owner, stripe_gateway):
    page = client.get(reverse("payment_method_add", args=["sepa"]))
    setup_intent = _setup_intent(client, page)
    _confirm(
        stripe_gateway,
        setup_intent,
        type="sepa_debit",
        sepa_debit={"iban": IBAN},
        billing_details={"name": "Jane Doe", "email": "jane@example.com"},
    )
    response = client.post(page.request["PATH_INFO"], {"setup_intent": setup_intent})
    assert response.status_code == 302
    method = PaymentMethod.objects.get(account=owner.account)
    assert (method.kind, method.last4) == ("sepa_debit", "3000")
    assert (
        method.fingerprint == stripe_gateway.v1.payment_methods.retrieve(method.token).sepa_debit.fingerprint
    )
    assert charge_order_ids(account=owner.account) == []  # the box was not ticked


@pytest.mark.parametrize(
    "posted",
    [
        # What the sandbox's form would send: not taken, whatever it says.
        {"number": "4242 4242 4242 4242", "expiry": "12/40", "cvc": "123", "add_to_order": "on"},
        {"setup_intent": "pm_123"},
        {"setup_intent": "seti_unconfirmed"},
    ],
)
def test_anything_but_a_confirmed_setup_intent_is_refused_and_counted(client, owner, stripe_gateway, posted):
    response = client.post(reverse("payment_method_add", args=["card"]), posted)
    assert response.status_code == 200
    assert response.context["form"].errors
    assert "4242 4242 4242 4242" not in response.content.decode().replace("Use card 4242 4242 4242 4242", "")
    assert not PaymentMethod.objects.filter(account=owner.account).exists()
    assert add_method_failures(account_id=owner.account.pk) == 1


def test_another_accounts_setup_intent_is_refused(client, owner, stripe_gateway):
    other = MembershipFactory(role=Membership.Role.OWNER)
    other_client = type(client)()
    other_client.force_login(other.user)
    page = other_client.get(reverse("payment_method_add", args=["card"]))
    setup_intent = _setup_intent(other_client, page)
    _confirm(stripe_gateway, setup_intent, type="card", card=CARD)

    response = client.post(reverse("payment_method_add", args=["card"]), {"setup_intent": setup_intent})

    assert response.status_code == 200
    assert "cannot be saved" in response.content.decode()
    assert not PaymentMethod.objects.exists()


def test_stripe_is_unreachable(client, owner, settings, stripe_gateway):
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # nothing listens there
    response = client.get(reverse("payment_method_add", args=["card"]))
    assert response.status_code == 503
    assert "Our payment processor cannot be reached" in response.content.decode()
    assert 'id="stripe-setup"' not in response.content.decode()


# The Content-Security-Policy.


def test_only_the_stripe_add_pages_allow_stripes_origins(client, owner, stripe_gateway, localstripe):
    policy = _csp(client.get(reverse("payment_method_add", args=["card"])))
    assert policy["script-src"] == ["'self'", localstripe]
    assert policy["frame-src"] == ["'self'", localstripe, "https://hooks.stripe.com"]
    assert policy["connect-src"] == ["'self'", localstripe]
    assert policy["frame-ancestors"] == ["'none'"] and policy["object-src"] == ["'none'"]
    assert _csp(client.get(reverse("payment_method_add", args=["sepa"])))["script-src"] == [
        "'self'",
        localstripe,
    ]
    # The rest of the console keeps the strict policy, Stripe gateway or not.
    assert "127.0.0.1" not in client.get(reverse("payment_methods"))["Content-Security-Policy"]


def test_the_policy_names_stripes_own_origins_in_production(client, owner, stripe_gateway, settings):
    settings.STRIPE_API_BASE = "https://api.stripe.com"
    settings.STRIPE_JS_URL = "https://js.stripe.com/v3/"
    policy = content_security_policy(settings.SECURE_CSP)
    assert policy["script-src"] == ["'self'", "https://js.stripe.com", "https://*.js.stripe.com"]
    assert policy["frame-src"] == [
        "'self'",
        "https://js.stripe.com",
        "https://hooks.stripe.com",
        "https://*.js.stripe.com",
    ]
    assert policy["connect-src"] == ["'self'", "https://api.stripe.com"]
    assert policy["style-src"] == settings.SECURE_CSP["style-src"]


def test_the_sandbox_add_page_keeps_the_strict_policy(client, owner):
    response = client.get(reverse("payment_method_add", args=["card"]))
    assert response.templates[0].name == "payments/method_add.html"
    policy = _csp(response)
    assert policy["script-src"] == ["'self'"]
    assert policy["connect-src"] == ["'self'"]
    assert "frame-src" not in policy


# The API.


@pytest.fixture
def api(owner):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {TokenFactory(user=owner.user).key}")
    return client


def test_an_api_client_saves_a_card_with_stripe_js_itself(api, owner, stripe_gateway):
    setup = api.post("/api/payment-methods/setup/", {"kind": "card"}, format="json")
    assert setup.status_code == 201, setup.content
    body = setup.json()
    assert body["client_secret"].startswith(body["setup_intent"] + "_secret_")
    assert body["publishable_key"] == "pk_test_localstripe"
    confirmed = _confirm(stripe_gateway, body["setup_intent"], type="card", card=CARD)

    response = api.post(
        "/api/payment-methods/",
        {"kind": "card", "payment_method": confirmed.payment_method},
        format="json",
    )

    assert response.status_code == 201, response.content
    assert (response.json()["label"], response.json()["position"]) == ("Visa •••• 4242", 1)
    method = PaymentMethod.objects.get(account=owner.account)
    assert method.token == confirmed.payment_method
    assert method.fingerprint == stripe_gateway.v1.payment_methods.retrieve(method.token).card.fingerprint


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"kind": "card", "number": "4242424242424242", "exp_month": 12, "exp_year": 2040, "cvc": "1"},
            "number",
        ),
        ({"kind": "card", "payment_method": "tok_visa"}, "payment_method"),
        ({"kind": "card"}, "payment_method"),
        ({"kind": "ach_debit", "payment_method": "pm_1"}, "kind"),
    ],
)
def test_the_api_takes_only_a_payment_method_id_with_stripe(api, owner, stripe_gateway, body, field):
    response = api.post("/api/payment-methods/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert "4242424242424242" not in response.content.decode()
    assert not PaymentMethod.objects.exists()


def test_a_payment_method_of_another_customer_is_refused(api, owner, stripe_gateway):
    stranger = stripe_gateway.v1.customers.create()
    method = stripe_gateway.v1.payment_methods.create(params={"type": "card", "card": CARD})
    stripe_gateway.v1.payment_methods.attach(method.id, params={"customer": stranger.id})
    response = api.post("/api/payment-methods/", {"kind": "card", "payment_method": method.id}, format="json")
    assert response.status_code == 400
    assert not PaymentMethod.objects.exists()


def test_there_is_nothing_to_set_up_with_the_sandbox(api):
    response = api.post("/api/payment-methods/setup/", {"kind": "card"}, format="json")
    assert response.status_code == 409
