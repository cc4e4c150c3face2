"""The Stripe settings: required only when Stripe is the gateway, a missing one named at start-up and by
``manage.py check``; the client never retries on its own and talks to STRIPE_API_BASE."""

import io

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from payments.gateways import DEFAULT_GATEWAYS, gateways_check, get_gateway
from payments.gateways.stripe import StripeGateway
from payments.gateways.stripe.client import DEFAULT_API_BASE, stripe_client
from tests.test_settings import start

KEYS = {
    "STRIPE_SECRET_KEY": "sk_test_offline",
    "STRIPE_PUBLISHABLE_KEY": "pk_test_offline",
    "STRIPE_WEBHOOK_SECRET": "whsec_offline",
}


def test_stripe_is_registered_and_the_sandbox_stays_the_default(settings):
    assert DEFAULT_GATEWAYS["stripe"] == "payments.gateways.stripe.StripeGateway"
    assert type(get_gateway("stripe")) is StripeGateway
    assert get_gateway().name == "sandbox"


def test_the_sandbox_needs_no_stripe_keys():
    result = start(DEBUG="0", PAYMENT_GATEWAY="sandbox")
    assert result.returncode == 0, result.stderr


def test_stripe_starts_with_its_keys():
    result = start(DEBUG="0", PAYMENT_GATEWAY="stripe", **KEYS)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("missing", sorted(KEYS))
def test_a_missing_stripe_key_stops_start_up_naming_it(missing):
    result = start(DEBUG="0", PAYMENT_GATEWAY="stripe", **{**KEYS, missing: ""})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert missing in result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("STRIPE_SECRET_KEY", "pk_test_swapped"),
        ("STRIPE_PUBLISHABLE_KEY", "sk_test_swapped"),
        ("STRIPE_WEBHOOK_SECRET", "secret"),
        ("STRIPE_API_BASE", "http://api.stripe.example"),
    ],
)
def test_a_stripe_setting_of_the_wrong_shape_stops_start_up_naming_it(setting, value):
    result = start(DEBUG="0", PAYMENT_GATEWAY="stripe", **{**KEYS, setting: value})
    assert result.returncode != 0
    assert setting in result.stderr.strip().splitlines()[-1]


@pytest.mark.django_db
@pytest.mark.parametrize("missing", sorted(KEYS))
def test_check_names_a_missing_stripe_setting_when_stripe_is_the_gateway(settings, missing):
    for name, value in KEYS.items():
        setattr(settings, name, "" if name == missing else value)
    settings.PAYMENT_GATEWAY = "stripe"
    [error] = gateways_check()
    assert error.id == "payments.E002" and missing in error.msg
    with pytest.raises(SystemCheckError, match=missing):
        call_command("check", stdout=io.StringIO(), stderr=io.StringIO())


def test_check_asks_nothing_of_stripe_when_it_is_not_the_gateway(settings):
    for name in KEYS:
        setattr(settings, name, "")
    assert settings.PAYMENT_GATEWAY == "sandbox"
    assert gateways_check() == []


def test_using_stripe_without_its_keys_says_which_is_missing(settings):
    settings.STRIPE_SECRET_KEY = ""
    with pytest.raises(ImproperlyConfigured, match="STRIPE_SECRET_KEY"):
        get_gateway("stripe").retrieve("pi_1")


def test_the_client_never_retries_on_its_own_and_talks_to_stripe_api_base(settings):
    for name, value in KEYS.items():
        setattr(settings, name, value)
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"
    options = stripe_client(timeout=7)._requestor._options
    assert options.max_network_retries == 0
    assert options.base_addresses["api"] == "http://127.0.0.1:9"
    assert stripe_client(timeout=7)._requestor._client._timeout == 7
    settings.STRIPE_API_BASE = ""
    assert stripe_client()._requestor._options.base_addresses["api"] == DEFAULT_API_BASE
