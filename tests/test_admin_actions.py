"""Retry now, Void and Mark uncollectible: confirmed first, then done by the same services as the
console and the commands, each leaving an audit event that names the staff member."""

import datetime

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from invoices.models import Invoice, PaymentAttempt
from payments.gateways import get_gateway
from payments.sandbox.models import SandboxCharge
from payments.services import payment_method_create
from tests.factories import (
    AccountFactory,
    InvoiceFactory,
    MembershipFactory,
    PaymentAttemptFactory,
    StaffUserFactory,
    SupportUserFactory,
)

pytestmark = pytest.mark.django_db

SUCCEEDS = "4242424242424242"
DECLINES = "4000000000000002"
CHANGELIST = reverse("admin:invoices_invoice_changelist")


@pytest.fixture(autouse=True)
def _quick_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def support(client):
    user = SupportUserFactory(username="sam")
    client.force_login(user)
    return user


def add_card(account, number):
    gateway = get_gateway()
    tokenized = gateway.tokenize_card(number=number, exp_month=12, exp_year=2030, cvc="123")
    return payment_method_create(account=account, actor=None, tokenized=tokenized, gateway=gateway.name)


def past_due_invoice(account, **kwargs):
    yesterday = timezone.now() - datetime.timedelta(days=1)
    return InvoiceFactory(
        account=account,
        status=Invoice.Status.PAST_DUE,
        due_on=timezone.localdate() - datetime.timedelta(days=2),
        issued_on=timezone.localdate() - datetime.timedelta(days=20),
        first_failed_at=yesterday,
        retry_round=1,
        next_attempt_at=timezone.now() + datetime.timedelta(days=2),
        **kwargs,
    )


@pytest.fixture
def account():
    account = AccountFactory()
    MembershipFactory(account=account)
    return account


def confirm(client, action, *invoices):
    """Post the confirmation page's form, as the "Yes" button does."""
    return client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [i.pk for i in invoices], "post": "yes"},
        follow=True,
        REMOTE_ADDR="198.51.100.23",
        headers={"User-Agent": "SupportBrowser/1.0"},
    )


def choose(client, action, *invoices):
    """Pick the action on the changelist, as the action bar does."""
    return client.post(
        CHANGELIST, {"action": action, "_selected_action": [i.pk for i in invoices], "index": 0}
    )


def said(response) -> list[tuple[str, str]]:
    return [(m.level_tag, m.message) for m in get_messages(response.wsgi_request)]


def test_choosing_an_action_shows_a_confirmation_and_changes_nothing(client, support, account):
    open_invoice = InvoiceFactory(account=account, number="INV-A")
    voided = InvoiceFactory(account=account, number="INV-B")
    Invoice.objects.filter(pk=voided.pk).update(status=Invoice.Status.VOID)

    response = choose(client, "void", open_invoice, voided)

    assert response.status_code == 200
    assert response.templates[0].name == "admin/invoices/invoice/action_confirmation.html"
    html = response.content.decode()
    assert "INV-A" in html and "INV-B" in html and "$125.00" in html
    assert "Nothing: it is void." in html
    # Only the invoices the action applies to are posted back, to the changelist.
    assert f'name="_selected_action" value="{open_invoice.pk}"' in html
    assert f'name="_selected_action" value="{voided.pk}"' not in html
    assert f'action="{CHANGELIST}"' in html and 'name="post" value="yes"' in html
    open_invoice.refresh_from_db()
    assert open_invoice.status == Invoice.Status.OPEN
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.INVOICE_VOIDED).exists()


def test_retry_now_pays_a_past_due_invoice_with_the_backup_that_now_works(client, support, account):
    primary = add_card(account, DECLINES)
    backup = add_card(account, SUCCEEDS)
    invoice = past_due_invoice(account)

    response = confirm(client, "retry_now", invoice)

    assert response.redirect_chain == [(CHANGELIST, 302)]
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    assert invoice.paid_by_method == backup and invoice.paid_by_backup
    attempts = list(invoice.attempts.order_by("sequence"))
    assert [(a.method, a.status) for a in attempts] == [
        (primary, PaymentAttempt.Status.FAILED),
        (backup, PaymentAttempt.Status.SUCCEEDED),
    ]
    assert {a.trigger for a in attempts} == {PaymentAttempt.Trigger.STAFF_RETRY}
    assert {a.initiated_by for a in attempts} == {support}
    event = AuditEvent.objects.get(action=AuditEvent.Action.INVOICE_RETRIED)
    assert (event.actor, event.actor_label, event.object_id) == (support, "staff: sam", str(invoice.pk))
    [(level, message)] = said(response)
    assert level == "success" and invoice.number in message


def test_a_second_retry_on_a_paid_invoice_changes_nothing_and_says_so(client, support, account):
    add_card(account, SUCCEEDS)
    invoice = past_due_invoice(account)
    confirm(client, "retry_now", invoice)
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    attempts, events = invoice.attempts.count(), AuditEvent.objects.count()
    charges = SandboxCharge.objects.count()
    updated_at = invoice.updated_at

    response = confirm(client, "retry_now", invoice)

    assert said(response) == [
        ("warning", f"Invoice {invoice.number} is paid: there is nothing to do, and nothing was changed.")
    ]
    invoice.refresh_from_db()
    assert invoice.updated_at == updated_at
    assert invoice.attempts.count() == attempts
    assert AuditEvent.objects.count() == events
    assert SandboxCharge.objects.count() == charges


def test_retry_now_when_every_method_still_fails_leaves_it_past_due_and_says_so(client, support, account):
    add_card(account, DECLINES)
    invoice = past_due_invoice(account)

    response = confirm(client, "retry_now", invoice)

    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAST_DUE
    assert invoice.attempts.get().decline_code == "generic_decline"
    [(level, _)] = said(response)
    assert level == "warning"


def test_retry_now_leaves_an_invoice_that_is_not_due_yet_to_the_schedule(client, support, account):
    add_card(account, SUCCEEDS)
    early = InvoiceFactory(account=account, due_on=timezone.localdate() + datetime.timedelta(days=3))
    due = past_due_invoice(account)

    response = confirm(client, "retry_now", early, due)

    early.refresh_from_db()
    due.refresh_from_db()
    assert early.status == Invoice.Status.OPEN and not early.attempts.exists()  # nothing charged
    assert due.status == Invoice.Status.PAID and SandboxCharge.objects.count() == 1
    [(early_level, early_text)] = [(lv, m) for lv, m in said(response) if early.number in m]
    [(due_level, _due_text)] = [(lv, m) for lv, m in said(response) if due.number in m]
    assert early_level == "warning" and due_level == "success"
    assert "is not due until" in early_text and "Nothing was changed." in early_text
    assert not AuditEvent.objects.filter(
        action=AuditEvent.Action.INVOICE_RETRIED, object_id=str(early.pk)
    ).exists()


def test_retry_now_takes_a_limited_batch(client, support, account):
    invoices = [past_due_invoice(account) for _ in range(21)]

    response = confirm(client, "retry_now", *invoices)

    [(level, message)] = said(response)
    assert level == "error" and "at most 20" in message
    assert not PaymentAttempt.objects.exists()


def test_void_voids_an_open_invoice_with_an_audit_event_naming_the_staff_member(client, support, account):
    invoice = InvoiceFactory(account=account)

    response = confirm(client, "void", invoice)

    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.VOID and invoice.voided_at is not None
    event = AuditEvent.objects.get(action=AuditEvent.Action.INVOICE_VOIDED)
    assert (event.actor, event.actor_label) == (support, "staff: sam")
    assert (event.before, event.after) == ({"status": "open"}, {"status": "void"})
    assert (event.ip_address, event.user_agent) == ("198.51.100.23", "SupportBrowser/1.0")
    assert said(response) == [("success", f"Invoice {invoice.number} was voided.")]


def test_mark_uncollectible_writes_off_a_past_due_invoice(client, support, account):
    invoice = past_due_invoice(account)

    response = confirm(client, "mark_uncollectible", invoice)

    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.UNCOLLECTIBLE and invoice.next_attempt_at is None
    event = AuditEvent.objects.get(action=AuditEvent.Action.INVOICE_UNCOLLECTIBLE)
    assert event.actor == support
    assert (event.ip_address, event.user_agent) == ("198.51.100.23", "SupportBrowser/1.0")
    assert said(response) == [("success", f"Invoice {invoice.number} was marked uncollectible.")]


def test_void_refuses_an_invoice_with_a_payment_in_flight(client, support, account):
    invoice = InvoiceFactory(account=account)
    PaymentAttemptFactory(
        invoice=invoice, status=PaymentAttempt.Status.UNKNOWN, decline_code="", decline_class=""
    )

    response = confirm(client, "void", invoice)

    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.OPEN
    [(level, message)] = said(response)
    assert level == "error" and "in progress" in message
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.INVOICE_VOIDED).exists()


def test_void_on_a_paid_invoice_changes_nothing_and_says_so(client, support, account):
    add_card(account, SUCCEEDS)
    invoice = past_due_invoice(account)
    confirm(client, "retry_now", invoice)

    response = confirm(client, "void", invoice)

    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    assert said(response) == [
        ("warning", f"Invoice {invoice.number} is paid: there is nothing to do, and nothing was changed.")
    ]


def test_actions_run_from_an_invoice_page_and_come_back_to_it(client, support, account):
    invoice = InvoiceFactory(account=account)
    change_url = reverse("admin:invoices_invoice_change", args=[invoice.pk])
    page = client.get(change_url).content.decode()
    assert 'value="void"' in page and 'value="retry_now"' in page

    response = client.post(
        change_url, {"CHANGE_FORM-action": "void", "_selected_action": invoice.pk, "index": 0}
    )

    assert response.templates[0].name == "admin/invoices/invoice/action_confirmation.html"
    html = response.content.decode()
    assert f'action="{CHANGELIST}"' in html and f'name="_return_to" value="{invoice.pk}"' in html
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.OPEN

    response = client.post(
        CHANGELIST,
        {"action": "void", "_selected_action": invoice.pk, "post": "yes", "_return_to": invoice.pk},
    )

    assert response.status_code == 302 and response.url == change_url
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.VOID


def test_a_confirmation_posted_to_the_invoice_page_only_shows_the_confirmation_again(
    client, support, account
):
    # The change form's POST runs in a transaction; nothing is charged or changed from there.
    invoice = InvoiceFactory(account=account)
    change_url = reverse("admin:invoices_invoice_change", args=[invoice.pk])

    response = client.post(
        change_url, {"CHANGE_FORM-action": "void", "_selected_action": invoice.pk, "index": 0, "post": "yes"}
    )

    assert response.templates[0].name == "admin/invoices/invoice/action_confirmation.html"
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.OPEN


def test_staff_without_the_change_permission_get_no_actions(client, account):
    viewer = StaffUserFactory()
    viewer.user_permissions.add(Permission.objects.get(codename="view_invoice"))
    client.force_login(viewer)
    invoice = InvoiceFactory(account=account)

    page = client.get(CHANGELIST).content.decode()
    response = confirm(client, "void", invoice)

    assert 'value="void"' not in page
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.OPEN
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.INVOICE_VOIDED).exists()
    assert response.status_code == 200
