"""Stripe webhook deliveries: the signature is checked with the webhook secret and a tolerance, and a
signed event is read into what the endpoint stores and applies."""

import datetime
import hashlib
import hmac
import json
import time
from pathlib import Path

import pytest
import responses

from invoices.models import Invoice, PaymentAttempt, WebhookEvent
from payments.gateways.base import WebhookSignatureError
from payments.gateways.stripe import StripeGateway
from payments.gateways.stripe.events import TOLERANCE_SECONDS
from tests.factories import InvoiceFactory, PaymentAttemptFactory, PaymentMethodFactory

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "stripe"
SECRET = "whsec_offline"


@pytest.fixture(autouse=True)
def stripe_settings(settings):
    settings.STRIPE_SECRET_KEY = "sk_test_offline"
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_offline"
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"


def body(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def signed(payload: bytes, *, secret: str = SECRET, at: int | None = None) -> dict[str, str]:
    """The header Stripe sends: a timestamp and the HMAC-SHA256 of "<timestamp>.<body>"."""
    at = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{at}.".encode() + payload, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={at},v1={mac}"}


def test_a_signed_payment_intent_event_is_read():
    payload = body("event_payment_intent_succeeded")
    event = StripeGateway().parse_event(payload, signed(payload))
    assert (event.id, event.type, event.reference, event.idempotency_key) == (
        "evt_3QsucceededK11",
        "payment_intent.succeeded",
        "pi_3QsucceededA1",
        "att-INV-0001-1",
    )
    assert (event.status, event.decline_code) == ("succeeded", "")
    assert event.created == datetime.datetime.fromtimestamp(1764633700, tz=datetime.UTC)
    assert event.payload["data"]["object"]["id"] == "pi_3QsucceededA1"


def test_a_dispute_names_its_payment_intent():
    payload = body("event_charge_dispute_created")
    event = StripeGateway().parse_event(payload, {"stripe-signature": signed(payload)["Stripe-Signature"]})
    assert (event.type, event.reference, event.idempotency_key, event.status) == (
        "charge.dispute.created",
        "pi_3QsucceededA1",
        "",
        "",
    )


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Stripe-Signature": "t=1,v1=00"},
        "another secret",
        "too old",
        "body changed",
    ],
)
def test_a_delivery_not_signed_with_our_secret_now_is_refused(headers):
    payload = body("event_payment_intent_succeeded")
    if headers == "another secret":
        headers = signed(payload, secret="whsec_someone_else")
    elif headers == "too old":
        headers = signed(payload, at=int(time.time()) - TOLERANCE_SECONDS - 60)
    elif headers == "body changed":
        headers = signed(payload)
        payload = payload.replace(b'"amount": 2500', b'"amount": 1')
    with pytest.raises(WebhookSignatureError):
        StripeGateway().parse_event(payload, headers)


def test_a_signed_body_that_is_not_an_event_is_refused():
    payload = json.dumps({"hello": "world"}).encode()
    with pytest.raises(WebhookSignatureError):
        StripeGateway().parse_event(payload, signed(payload))


# Through /webhooks/stripe/ ------------------------------------------------------------------------


def _pending_sepa_attempt():
    invoice = InvoiceFactory(number="INV-0001", currency="EUR", amount_minor=2500)
    method = PaymentMethodFactory(
        account=invoice.account, gateway="stripe", kind="sepa_debit", token="pm_1QsepaDE3000", brand=""
    )
    return PaymentAttemptFactory(
        invoice=invoice,
        method=method,
        status=PaymentAttempt.Status.PENDING,
        idempotency_key="att-INV-0001-1",
        gateway_reference="pi_3QprocessingB2",
        decline_code="",
        decline_class="",
    )


def _succeeded_sepa_intent() -> dict:
    return {**json.loads(body("payment_intent_processing")), "status": "succeeded", "amount_received": 2500}


@pytest.mark.django_db
def test_a_cleared_sepa_debit_is_applied_once_from_the_payment_intent_read_again(client):
    attempt = _pending_sepa_attempt()
    # The event still says "processing" (events come out of order); Stripe's current answer decides.
    event = {
        "id": "evt_3QclearedN14",
        "object": "event",
        "created": 1764900000,
        "type": "payment_intent.processing",
        "data": {"object": json.loads(body("payment_intent_processing"))},
        "livemode": False,
    }
    payload = json.dumps(event).encode()
    headers = signed(payload)
    with responses.RequestsMock() as api:
        api.get("http://127.0.0.1:9/v1/payment_intents/pi_3QprocessingB2", json=_succeeded_sepa_intent())
        first = client.post(
            "/webhooks/stripe/", data=payload, content_type="application/json", headers=headers
        )
        again = client.post(
            "/webhooks/stripe/", data=payload, content_type="application/json", headers=headers
        )
        assert len(api.calls) == 1
    assert (first.status_code, first.json()["duplicate"], first.json()["outcome"]) == (200, False, "applied")
    assert (again.status_code, again.json()["duplicate"]) == (200, True)
    attempt.refresh_from_db()
    assert attempt.status == "succeeded"
    assert Invoice.objects.get(pk=attempt.invoice_id).status == Invoice.Status.PAID
    assert WebhookEvent.objects.filter(gateway="stripe", event_id="evt_3QclearedN14").count() == 1


@pytest.mark.django_db
def test_a_delivery_with_a_bad_signature_is_a_400_and_nothing_is_kept(client):
    payload = body("event_payment_intent_succeeded")
    response = client.post(
        "/webhooks/stripe/",
        data=payload,
        content_type="application/json",
        headers=signed(payload, secret="whsec_someone_else"),
    )
    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()
