"""A charge the customer's bank wants confirmed on-session (3-D Secure): the cascade moves on, the
customer is emailed once per attempt with a link to the authenticate page, and that page completes
the charge only as the gateway reports it, or cancels it when the invoice no longer needs it."""

import dataclasses
import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from invoices.models import Invoice, PaymentAttempt
from invoices.settlement import invoice_pay_now, settlement_run
from invoices.settlement.claim import claim_one, new_lease
from notifications.models import SentEmail
from payments.gateways.base import ChargeResult, ChargeStatus
from payments.gateways.sandbox import SandboxGateway
from tests import utils
from tests.factories import AccountFactory, InvoiceFactory, MembershipFactory

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])
Status = PaymentAttempt.Status


class ThreeDSecureSandbox(SandboxGateway):
    """The sandbox, except that the cards in ``asks`` are answered as Stripe answers a card whose
    bank wants 3-D Secure: a PaymentIntent waiting for the customer, with its client secret."""

    asks: set[str] = set()
    intents: dict[str, ChargeResult] = {}
    cancelled: list[str] = []

    def charge(self, **kwargs):
        if kwargs["method_token"] not in self.asks:
            return super().charge(**kwargs)
        reference = f"pi_{kwargs['idempotency_key']}"
        result = ChargeResult(
            status=ChargeStatus.REQUIRES_ACTION,
            reference=reference,
            idempotency_key=kwargs["idempotency_key"],
            amount_minor=kwargs["amount_minor"],
            currency=kwargs["currency"],
            action_secret=f"{reference}_secret_abc",
        )
        self.intents[reference] = result
        if kwargs.get("on_reference"):
            kwargs["on_reference"](reference)
        return result

    def retrieve(self, reference):
        return self.intents.get(reference) or super().retrieve(reference)

    def cancel(self, reference):
        self.cancelled.append(reference)
        if reference not in self.intents:
            return super().cancel(reference)
        if self.intents[reference].status == ChargeStatus.SUCCEEDED:
            return self.intents[reference]  # as Stripe: a succeeded PaymentIntent cannot be cancelled
        cancelled = dataclasses.replace(
            self.intents[reference], status=ChargeStatus.FAILED, decline_code="canceled", action_secret=""
        )
        self.intents[reference] = cancelled
        return cancelled

    @classmethod
    def bank_says(cls, reference, status):
        cls.intents[reference] = dataclasses.replace(cls.intents[reference], status=status, action_secret="")


@pytest.fixture(autouse=True)
def three_d_secure(settings):
    settings.PAYMENT_GATEWAYS = {"sandbox": "tests.test_authentication.ThreeDSecureSandbox"}
    ThreeDSecureSandbox.asks, ThreeDSecureSandbox.intents, ThreeDSecureSandbox.cancelled = set(), {}, []
    return ThreeDSecureSandbox


@pytest.fixture
def member(client):
    account = AccountFactory()
    user = MembershipFactory(account=account).user
    client.force_login(user)
    return account


def _asking_primary(account, *, backup=utils.GENERIC_DECLINE):
    primary = utils.add_card(account)
    ThreeDSecureSandbox.asks.add(primary.token)
    if backup:
        utils.add_card(account, backup)
    return primary


def _waiting(invoice) -> PaymentAttempt:
    return invoice.attempts.get(status=Status.REQUIRES_ACTION)


def test_the_cascade_moves_on_and_the_customer_is_emailed_once_per_attempt(member):
    _asking_primary(member)  # the backup declines
    invoice = InvoiceFactory(account=member)
    settlement_run()
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAST_DUE
    first = invoice.attempts.get(position=1)
    assert first.status == Status.REQUIRES_ACTION
    assert invoice.attempts.get(position=2).status == Status.FAILED  # the cascade went on
    emails = SentEmail.objects.filter(kind=SentEmail.Kind.AUTHENTICATION_REQUIRED)
    assert list(emails.values_list("event_key", flat=True)) == [f"authentication_required:{first.pk}"]
    assert emails.get().context["invoice_id"] == invoice.pk
    # A run that finds nothing due asks nothing more; the next round's new attempt asks again, once.
    settlement_run()
    assert emails.count() == 1
    settlement_run(as_of=invoice.next_attempt_at + datetime.timedelta(minutes=1))
    second = invoice.attempts.filter(position=1).latest("sequence")
    assert second != first
    assert sorted(emails.values_list("event_key", flat=True)) == sorted(
        [f"authentication_required:{first.pk}", f"authentication_required:{second.pk}"]
    )


def test_nobody_is_asked_to_authenticate_when_a_backup_pays_in_the_same_run(member):
    _asking_primary(member, backup=utils.SUCCEEDS)
    invoice = InvoiceFactory(account=member)
    settlement_run()
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID and invoice.paid_by_backup
    assert invoice.attempts.get(position=1).status == Status.REQUIRES_ACTION
    assert not SentEmail.objects.filter(kind=SentEmail.Kind.AUTHENTICATION_REQUIRED).exists()
    assert SentEmail.objects.filter(kind=SentEmail.Kind.BACKUP_CHARGED).count() == 1


def test_the_email_links_to_the_authenticate_page(member, mailoutbox, django_capture_on_commit_callbacks):
    _asking_primary(member)
    invoice = InvoiceFactory(account=member)
    with django_capture_on_commit_callbacks(execute=True):
        invoice_pay_now(invoice=invoice, actor=None)
    message = next(m for m in mailoutbox if "confirm" in m.subject.lower())
    assert reverse("invoice_authenticate", args=[invoice.pk]) in message.body


def test_the_page_confirms_in_the_browser_and_the_server_applies_the_gateways_answer(client, member):
    _asking_primary(member)
    invoice = InvoiceFactory(account=member)
    invoice_pay_now(invoice=invoice, actor=None)
    attempt = _waiting(invoice)
    url = reverse("invoice_authenticate", args=[invoice.pk])
    # The invoice's page leads there.
    assert f'href="{url}"' in client.get(reverse("invoice_detail", args=[invoice.pk])).content.decode()
    page = client.get(url)
    body = page.content.decode()
    assert page.status_code == 200
    assert f'data-client-secret="{attempt.gateway_reference}_secret_abc"' in body
    assert 'src="/static/invoices/authenticate.js"' in body and "<script>" not in body
    assert "needs JavaScript" in body  # said plainly to a browser without it (noscript)
    # The browser posts back, but its word is not taken: the bank has not confirmed yet.
    client.post(url, {"attempt": attempt.pk})
    attempt.refresh_from_db()
    assert attempt.status == Status.REQUIRES_ACTION
    # Confirmed at the gateway: the invoice is paid by that attempt.
    ThreeDSecureSandbox.bank_says(attempt.gateway_reference, ChargeStatus.SUCCEEDED)
    done = client.post(url, {"attempt": attempt.pk})
    assert done.status_code == 302 and done.url == reverse("invoice_detail", args=[invoice.pk])
    invoice.refresh_from_db()
    attempt.refresh_from_db()
    assert attempt.status == Status.SUCCEEDED
    assert (invoice.status, invoice.paid_by_attempt_id) == (Invoice.Status.PAID, attempt.pk)


def test_a_refused_authentication_fails_the_attempt_and_leaves_the_invoice_due(client, member):
    _asking_primary(member)
    invoice = InvoiceFactory(account=member)
    invoice_pay_now(invoice=invoice, actor=None)
    attempt = _waiting(invoice)
    ThreeDSecureSandbox.bank_says(attempt.gateway_reference, ChargeStatus.FAILED)
    client.post(reverse("invoice_authenticate", args=[invoice.pk]), {"attempt": attempt.pk})
    attempt.refresh_from_db()
    invoice.refresh_from_db()
    assert attempt.status == Status.FAILED and invoice.is_collectable


def test_when_a_backup_paid_meanwhile_the_page_says_so_and_cancels_the_charge(client, member):
    _asking_primary(member, backup=utils.SUCCEEDS)
    invoice = InvoiceFactory(account=member)
    invoice_pay_now(invoice=invoice, actor=None)
    attempt = invoice.attempts.get(position=1)
    page = client.get(reverse("invoice_authenticate", args=[invoice.pk])).content.decode()
    assert "This invoice is paid" in page and "data-client-secret" not in page
    assert ThreeDSecureSandbox.cancelled == [attempt.gateway_reference]
    attempt.refresh_from_db()
    assert attempt.status == Status.CANCELED
    # Opened again: nothing more to cancel.
    client.get(reverse("invoice_authenticate", args=[invoice.pk]))
    assert ThreeDSecureSandbox.cancelled == [attempt.gateway_reference]


def test_a_viewer_cannot_pay_and_another_accounts_invoice_is_a_404(client, member):
    _asking_primary(member)
    invoice = InvoiceFactory(account=member)
    other = InvoiceFactory()
    assert client.get(reverse("invoice_authenticate", args=[other.pk])).status_code == 404
    viewer = MembershipFactory(account=member, role="viewer").user
    client.force_login(viewer)
    assert client.get(reverse("invoice_authenticate", args=[invoice.pk])).status_code == 403


def test_the_sandbox_cancel_changes_no_charge():
    gateway = SandboxGateway()
    token = gateway.tokenize_card(number=utils.SUCCEEDS, exp_month=12, exp_year=2040, cvc="123").token
    paid = gateway.charge(
        customer="",
        method_token=token,
        amount_minor=500,
        currency="USD",
        idempotency_key="k-1",
        metadata={},
        timeout=5,
    )
    assert gateway.cancel(paid.reference) == paid
    assert gateway.cancel("ch_sandbox_none") is None


def test_a_charge_the_gateway_would_not_cancel_stays_waiting(client, member, monkeypatch):
    _asking_primary(member, backup=utils.SUCCEEDS)
    invoice = InvoiceFactory(account=member)
    invoice_pay_now(invoice=invoice, actor=None)
    attempt = invoice.attempts.get(position=1)
    monkeypatch.setattr(ThreeDSecureSandbox, "cancel", lambda self, reference: self.intents[reference])
    client.get(reverse("invoice_authenticate", args=[invoice.pk]))
    attempt.refresh_from_db()
    assert attempt.status == Status.REQUIRES_ACTION  # never closed on our side alone


def test_a_gateway_that_does_not_answer_changes_nothing_and_the_page_says_so(client, member, monkeypatch):
    from payments.gateways.base import GatewayUnavailable

    _asking_primary(member)
    invoice = InvoiceFactory(account=member)
    invoice_pay_now(invoice=invoice, actor=None)
    attempt = _waiting(invoice)

    def no_answer(self, reference):
        raise GatewayUnavailable("timed out")

    monkeypatch.setattr(ThreeDSecureSandbox, "retrieve", no_answer)
    page = client.get(reverse("invoice_authenticate", args=[invoice.pk]))
    assert page.status_code == 200 and "could not reach the payment processor" in page.content.decode()
    client.post(reverse("invoice_authenticate", args=[invoice.pk]), {"attempt": attempt.pk})
    attempt.refresh_from_db()
    assert attempt.status == Status.REQUIRES_ACTION


def _past_due_and_waiting(member):
    """An invoice whose primary asks for 3-D Secure and whose backup declined: due again later."""
    _asking_primary(member)
    invoice = InvoiceFactory(account=member)
    settlement_run()
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAST_DUE
    return invoice


def test_while_the_page_holds_the_invoice_no_run_charges_another_method(client, member):
    invoice = _past_due_and_waiting(member)
    attempt = _waiting(invoice)
    url = reverse("invoice_authenticate", args=[invoice.pk])
    assert "data-client-secret" in client.get(url).content.decode()
    invoice.refresh_from_db()
    assert invoice.lease_owner == "authentication page" and invoice.lease_expires_at > timezone.now()

    # The next round comes while the customer is still on the page: nothing is charged.
    attempts_before = invoice.attempts.count()
    settlement_run(as_of=invoice.next_attempt_at + datetime.timedelta(minutes=1))
    assert invoice.attempts.count() == attempts_before

    # Confirmed: paid by that attempt, and the hold is given back.
    ThreeDSecureSandbox.bank_says(attempt.gateway_reference, ChargeStatus.SUCCEEDED)
    client.post(url, {"attempt": attempt.pk})
    invoice.refresh_from_db()
    assert (invoice.status, invoice.paid_by_attempt_id) == (Invoice.Status.PAID, attempt.pk)
    assert (invoice.lease_owner, invoice.lease_expires_at) == ("", None)


def test_a_run_working_on_the_invoice_makes_the_page_wait(client, member):
    invoice = _past_due_and_waiting(member)
    claim_one(invoice_id=invoice.pk, lease=new_lease(owner="worker-1:run-9"))
    page = client.get(reverse("invoice_authenticate", args=[invoice.pk]), follow=True)
    body = page.content.decode()
    assert "being processed right now" in body
    assert "data-client-secret" not in body  # no secret while a run may charge another method


def test_only_the_latest_waiting_charge_can_be_confirmed(client, member):
    invoice = _past_due_and_waiting(member)
    first = _waiting(invoice)
    settlement_run(as_of=invoice.next_attempt_at + datetime.timedelta(minutes=1))
    latest = invoice.attempts.filter(status=Status.REQUIRES_ACTION).latest("sequence")
    assert latest != first

    body = client.get(reverse("invoice_authenticate", args=[invoice.pk])).content.decode()
    assert f'data-client-secret="{latest.gateway_reference}_secret_abc"' in body
    first.refresh_from_db()
    assert first.status == Status.CANCELED and ThreeDSecureSandbox.cancelled == [first.gateway_reference]


def test_an_earlier_charge_confirmed_after_all_pays_the_invoice_and_the_latest_is_cancelled(client, member):
    invoice = _past_due_and_waiting(member)
    first = _waiting(invoice)
    settlement_run(as_of=invoice.next_attempt_at + datetime.timedelta(minutes=1))
    latest = invoice.attempts.filter(status=Status.REQUIRES_ACTION).latest("sequence")
    ThreeDSecureSandbox.bank_says(first.gateway_reference, ChargeStatus.SUCCEEDED)

    body = client.get(reverse("invoice_authenticate", args=[invoice.pk]), follow=True).content.decode()
    assert "data-client-secret" not in body  # nothing is left to confirm
    invoice.refresh_from_db()
    latest.refresh_from_db()
    assert (invoice.status, invoice.paid_by_attempt_id) == (Invoice.Status.PAID, first.pk)
    assert latest.status == Status.CANCELED
