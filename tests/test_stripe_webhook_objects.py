"""Stripe's webhooks about refunds, disputes and saved methods, signed as Stripe signs them
(tests/fixtures/stripe/, shaped as Stripe's API reference shows them). Each event is stored once and
its object read again from Stripe (answered here by ``responses``) before anything changes."""

import datetime
import hashlib
import hmac
import json
import time
from pathlib import Path

import pytest
import responses

from accounts.models import AuditEvent
from invoices.models import Invoice, PaymentAttempt, Refund, WebhookEvent
from payments.expiry import expiry_reminders_due
from payments.models import ChargeOrderEntry, GatewayCustomer, PaymentMethod
from tests.factories import AccountFactory, InvoiceFactory, PaymentAttemptFactory, PaymentMethodFactory

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "stripe"
SECRET = "whsec_offline"
API = "http://127.0.0.1:9"
CUSTOMER = "cus_RfT4xY2aBcD9eF"
TOKEN = "pm_1QcardVisa4242"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def stripe_settings(settings):
    settings.STRIPE_SECRET_KEY = "sk_test_offline"
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_offline"
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    settings.STRIPE_API_BASE = API


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def deliver(client, name: str):
    payload = (FIXTURES / f"{name}.json").read_bytes()
    at = int(time.time())
    mac = hmac.new(SECRET.encode(), f"{at}.".encode() + payload, hashlib.sha256).hexdigest()
    return client.post(
        "/webhooks/stripe/",
        data=payload,
        content_type="application/json",
        headers={"Stripe-Signature": f"t={at},v1={mac}"},
    )


def _paid_card_invoice():
    invoice = InvoiceFactory(number="INV-0001", currency="USD", amount_minor=2500)
    method = PaymentMethodFactory(account=invoice.account, gateway="stripe", token=TOKEN)
    attempt = PaymentAttemptFactory(
        invoice=invoice,
        method=method,
        status=PaymentAttempt.Status.SUCCEEDED,
        idempotency_key="att-INV-0001-1",
        gateway_reference="pi_3QsucceededA1",
        decline_code="",
        decline_class="",
        completed_at=datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC),
    )
    Invoice.objects.filter(pk=invoice.pk).update(  # the fixture's starting point, not a transition
        status=Invoice.Status.PAID,
        paid_at=attempt.completed_at,
        paid_by_attempt=attempt,
        paid_by_method=method,
    )
    return Invoice.objects.get(pk=invoice.pk), attempt


def test_a_refund_made_in_stripes_dashboard_is_recorded_once(client):
    invoice, attempt = _paid_card_invoice()
    with responses.RequestsMock() as api:
        api.get(f"{API}/v1/refunds", json=fixture("refund_list"))
        first = deliver(client, "event_charge_refunded")
        again = deliver(client, "event_charge_refunded")
    assert (first.json()["outcome"], again.json()["duplicate"]) == ("applied", True)
    refund = Refund.objects.get()
    assert (refund.invoice, refund.attempt, refund.amount_minor, refund.status, refund.source) == (
        invoice,
        attempt,
        1000,
        Refund.Status.SUCCEEDED,
        Refund.Source.GATEWAY,
    )
    assert refund.gateway_reference == "re_3QrefundJ10"
    assert AuditEvent.objects.filter(action=AuditEvent.Action.INVOICE_REFUNDED).count() == 1


def test_a_refund_by_support_is_not_recorded_again_by_its_webhook(client):
    invoice, attempt = _paid_card_invoice()
    ours = Refund.objects.create(
        invoice=invoice, attempt=attempt, amount_minor=1000, currency="USD", status=Refund.Status.UNKNOWN
    )
    listed = fixture("refund_list")
    listed["data"][0]["metadata"] = {"refund": ours.idempotency_key}
    with responses.RequestsMock() as api:
        api.get(f"{API}/v1/refunds", json=listed)
        assert deliver(client, "event_charge_refunded").json()["outcome"] == "applied"
    ours.refresh_from_db()
    assert Refund.objects.count() == 1
    assert (ours.status, ours.gateway_reference) == (Refund.Status.SUCCEEDED, "re_3QrefundJ10")


def test_a_dispute_is_kept_on_its_attempt_and_shown_to_support(client, admin_client):
    invoice, attempt = _paid_card_invoice()
    response = deliver(client, "event_charge_dispute_created")  # nothing to read from Stripe
    assert response.json()["outcome"] == "applied"
    stored = WebhookEvent.objects.get(type="charge.dispute.created")
    assert stored.attempt == attempt
    page = admin_client.get(f"/admin/invoices/invoice/{invoice.pk}/change/").content.decode()
    assert "dp_1QdisputeL12" in page and "fraudulent" in page
    page = admin_client.get(f"/admin/invoices/paymentattempt/{attempt.pk}/change/").content.decode()
    assert "dp_1QdisputeL12" in page


def _stripe_card(account, **fields):
    method = PaymentMethodFactory(
        account=account, gateway="stripe", token=TOKEN, exp_month=8, exp_year=2031, last4="4242", **fields
    )
    ChargeOrderEntry.objects.create(account=account, method=method, position=1)
    return method


def test_the_card_updaters_new_expiry_and_last4_replace_ours_and_the_old_reminders_stop(client):
    account = AccountFactory()
    method = _stripe_card(account, blocked_at=datetime.datetime(2026, 11, 1, tzinfo=datetime.UTC))
    near_old_expiry = datetime.date(2031, 8, 20)
    assert [r.method for r in expiry_reminders_due(today=near_old_expiry)] == [method]
    with responses.RequestsMock() as api:
        api.get(f"{API}/v1/payment_methods/{TOKEN}", json=fixture("payment_method_card_updated"))
        assert deliver(client, "event_payment_method_automatically_updated").json()["outcome"] == "applied"
    method.refresh_from_db()
    assert (method.exp_month, method.exp_year, method.last4, method.blocked_at) == (11, 2034, "1881", None)
    assert expiry_reminders_due(today=near_old_expiry) == []
    audit = AuditEvent.objects.get(action=AuditEvent.Action.METHOD_UPDATED)
    assert audit.actor_label == "gateway: stripe webhook"
    assert (audit.before["exp"], audit.after["exp"]) == ("08/2031", "11/2034")
    assert "4242" in audit.before["label"] and "1881" in audit.after["label"]


def test_a_method_detached_at_stripe_leaves_the_charge_order_with_an_audit_event(client):
    account = AccountFactory()
    method = _stripe_card(account)
    with responses.RequestsMock() as api:
        api.get(f"{API}/v1/payment_methods/{TOKEN}", json=fixture("payment_method_card_detached"))
        assert deliver(client, "event_payment_method_detached").json()["outcome"] == "applied"
    method.refresh_from_db()
    assert method.status == PaymentMethod.Status.REMOVED
    assert not ChargeOrderEntry.objects.filter(account=account).exists()
    audit = AuditEvent.objects.get(action=AuditEvent.Action.METHOD_REMOVED)
    assert audit.actor_label == "gateway: stripe webhook"


def test_a_detached_event_for_a_method_attached_again_since_changes_nothing(client):
    method = _stripe_card(AccountFactory())
    with responses.RequestsMock() as api:
        api.get(f"{API}/v1/payment_methods/{TOKEN}", json=fixture("payment_method_card"))
        assert deliver(client, "event_payment_method_detached").json()["outcome"] == "unchanged"
    method.refresh_from_db()
    assert method.status == PaymentMethod.Status.ACTIVE


def test_a_method_saved_at_stripe_is_kept_once(client):
    account = AccountFactory()
    GatewayCustomer.objects.create(account=account, gateway="stripe", reference=CUSTOMER)
    with responses.RequestsMock() as api:
        api.get(f"{API}/v1/setup_intents/seti_1QsetupI9", json=fixture("setup_intent_succeeded"))
        api.get(f"{API}/v1/payment_methods/{TOKEN}", json=fixture("payment_method_card"))
        assert deliver(client, "event_setup_intent_succeeded").json()["outcome"] == "applied"
    method = PaymentMethod.objects.get(account=account)
    assert (method.token, method.last4, method.exp_month, method.exp_year) == (TOKEN, "4242", 8, 2031)
    # The add-method page kept it first, or the event came again under another id: nothing more.
    WebhookEvent.objects.all().delete()
    with responses.RequestsMock() as api:
        api.get(f"{API}/v1/setup_intents/seti_1QsetupI9", json=fixture("setup_intent_succeeded"))
        api.get(f"{API}/v1/payment_methods/{TOKEN}", json=fixture("payment_method_card"))
        deliver(client, "event_setup_intent_succeeded")
    assert PaymentMethod.objects.filter(account=account).count() == 1


def test_an_event_stripe_could_not_answer_for_is_kept_unprocessed_and_a_503(client):
    _stripe_card(AccountFactory())
    with responses.RequestsMock() as api:
        api.get(f"{API}/v1/payment_methods/{TOKEN}", status=500, json=fixture("api_error"))
        response = deliver(client, "event_payment_method_automatically_updated")
    assert response.status_code == 503
    stored = WebhookEvent.objects.get()
    assert (stored.processed_at, stored.outcome) == (None, "error")
