"""Support's refunds: recorded and committed before the gateway call, under a key derived from the
recorded row; never more than was paid in total; an unknown outcome resolved without refunding
twice; audited; shown to the customer and in the API."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import AuditEvent, Membership
from invoices.models import Invoice, Refund
from invoices.refunds import invoice_refund, refund_record, refund_resolve, refund_send, refundable_minor
from invoices.settlement import invoice_pay_now
from payments.gateways.base import GatewayUnavailable
from payments.sandbox.models import SandboxRefund
from tests import utils
from tests.factories import (
    AccountFactory,
    InvoiceFactory,
    MembershipFactory,
    SupportUserFactory,
    TokenFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])


@pytest.fixture
def paid():
    account = AccountFactory()
    utils.add_card(account)
    invoice = InvoiceFactory(account=account, amount_minor=10_000, currency="USD")
    invoice_pay_now(invoice=invoice, actor=None)
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    return invoice


def test_a_part_then_the_rest_is_refunded_at_the_gateway_with_the_rows_own_key(paid):
    support = SupportUserFactory()
    part = invoice_refund(invoice=paid, amount_minor=3_000, actor=support, reason="Goodwill")
    rest = invoice_refund(invoice=paid, amount_minor=7_000, actor=support, reason="Cancelled")
    assert [part.status, rest.status] == [Refund.Status.SUCCEEDED] * 2
    at_gateway = SandboxRefund.objects.order_by("pk")
    assert list(at_gateway.values_list("idempotency_key", "amount_minor")) == [
        (part.idempotency_key, 3_000),
        (rest.idempotency_key, 7_000),
    ]
    assert part.gateway_reference == at_gateway[0].reference
    assert refundable_minor(paid) == 0
    paid.refresh_from_db()
    assert paid.status == Invoice.Status.PAID  # a refund gives money back; it reopens nothing
    actions = list(
        AuditEvent.objects.filter(object_type="invoice", object_id=str(paid.pk), actor=support).values_list(
            "action", flat=True
        )
    )
    assert actions.count(AuditEvent.Action.REFUND_REQUESTED) == 2
    assert actions.count(AuditEvent.Action.INVOICE_REFUNDED) == 2


def test_never_more_than_was_paid_in_total(paid):
    invoice_refund(invoice=paid, amount_minor=6_000, actor=None)
    with pytest.raises(Exception, match="At most"):
        refund_record(invoice=paid, amount_minor=4_001, actor=None)
    with pytest.raises(Exception, match="At most"):
        refund_record(invoice=paid, amount_minor=0, actor=None)
    assert Refund.objects.count() == 1 and SandboxRefund.objects.count() == 1


def test_an_unpaid_invoice_cannot_be_refunded():
    invoice = InvoiceFactory()
    with pytest.raises(Exception, match="Only a paid invoice"):
        refund_record(invoice=invoice, amount_minor=100, actor=None)


def test_the_refund_is_committed_before_the_call_and_a_lost_answer_is_resolved_once(paid, monkeypatch):
    from payments.gateways.sandbox import SandboxGateway

    real = SandboxGateway.refund
    seen = []

    def answer_lost(self, **kwargs):
        seen.append(Refund.objects.get().status)  # recorded before the gateway heard of it
        real(self, **kwargs)  # the refund is made …
        raise GatewayUnavailable("reply lost")  # … but its answer never arrives

    monkeypatch.setattr(SandboxGateway, "refund", answer_lost)
    refund = invoice_refund(invoice=paid, amount_minor=2_500, actor=None)
    assert seen == [Refund.Status.STARTED]
    assert refund.status == Refund.Status.UNKNOWN
    # While it is unknown it still counts: nothing more than was paid can be asked for.
    assert refundable_minor(paid) == 7_500
    monkeypatch.setattr(SandboxGateway, "refund", real)
    refund = refund_resolve(refund)
    assert refund.status == Refund.Status.SUCCEEDED
    assert SandboxRefund.objects.count() == 1  # found by its key, not made again
    assert refund.gateway_reference == SandboxRefund.objects.get().reference


def test_a_refund_the_gateway_refuses_is_recorded_and_counts_for_nothing(paid, monkeypatch):
    from payments.gateways.base import GatewayError
    from payments.gateways.sandbox import SandboxGateway

    def refuse(self, **kwargs):
        raise GatewayError("charge disputed")

    monkeypatch.setattr(SandboxGateway, "refund", refuse)
    refund = invoice_refund(invoice=paid, amount_minor=1_000, actor=None)
    assert (refund.status, refund.message) == (Refund.Status.FAILED, "charge disputed")
    assert refundable_minor(paid) == 10_000
    assert AuditEvent.objects.filter(action=AuditEvent.Action.REFUND_FAILED).count() == 1


def test_repeating_a_recorded_refund_never_refunds_twice(paid):
    refund = refund_record(invoice=paid, amount_minor=1_000, actor=None)
    refund_send(refund)
    refund_send(refund)
    assert SandboxRefund.objects.count() == 1


def test_support_refunds_in_admin_after_a_confirmation(client, paid):
    support = SupportUserFactory()
    client.force_login(support)
    url = reverse("admin:invoices_invoice_refund", args=[paid.pk])
    page = client.get(url)
    assert page.status_code == 200 and "100.00" in page.content.decode()
    confirm = client.post(url, {"amount": "25.00", "reason": "Late delivery"})
    assert "Refund $25.00 to the customer now?" in confirm.content.decode()
    assert Refund.objects.count() == 0  # nothing happens before the confirmation
    done = client.post(url, {"amount": "25.00", "reason": "Late delivery", "confirm": "yes"})
    assert done.status_code == 302
    refund = Refund.objects.get()
    assert (refund.amount_minor, refund.status, refund.requested_by) == (2_500, "succeeded", support)
    too_much = client.post(url, {"amount": "75.01", "reason": "x"})
    assert "at most $75.00" in too_much.content.decode()
    change = client.get(reverse("admin:invoices_invoice_change", args=[paid.pk]))
    assert "$25.00" in change.content.decode() and url in change.content.decode()


def test_the_refund_page_needs_the_refund_permission(client, paid):
    staff = UserFactory(is_staff=True)
    client.force_login(staff)
    assert client.get(reverse("admin:invoices_invoice_refund", args=[paid.pk])).status_code == 403


def test_the_customer_sees_refunds_on_the_invoice_page_and_in_the_api(client, paid):
    invoice_refund(invoice=paid, amount_minor=4_000, actor=None)
    member = MembershipFactory(account=paid.account, role=Membership.Role.OWNER).user
    client.force_login(member)
    page = client.get(reverse("invoice_detail", args=[paid.pk])).content.decode()
    assert "Refunds" in page and "$40.00" in page
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {TokenFactory(user=member).key}")
    data = api.get(f"/api/invoices/{paid.pk}/").json()
    assert data["refunded_minor"] == 4_000
    assert [(r["amount_minor"], r["status"]) for r in data["refunds"]] == [(4_000, "succeeded")]


def test_support_resolves_an_unknown_refund_from_the_refunds_admin(client, paid, monkeypatch):
    from payments.gateways.sandbox import SandboxGateway

    real = SandboxGateway.refund

    def answer_lost(self, **kwargs):
        real(self, **kwargs)
        raise GatewayUnavailable("reply lost")

    monkeypatch.setattr(SandboxGateway, "refund", answer_lost)
    refund = invoice_refund(invoice=paid, amount_minor=1_500, actor=None)
    monkeypatch.setattr(SandboxGateway, "refund", real)
    client.force_login(SupportUserFactory())
    response = client.post(
        reverse("admin:invoices_refund_changelist"), {"action": "resolve", "_selected_action": [refund.pk]}
    )
    assert response.status_code == 302
    refund.refresh_from_db()
    assert refund.status == Refund.Status.SUCCEEDED
    assert SandboxRefund.objects.count() == 1
