"""Who may do what in the admin: the Support group's exact permissions, records nobody can alter,
and customers kept out."""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from accounts.models import Account, AuditEvent
from invoices.models import Invoice, PaymentAttempt, SettlementRun
from payments.models import PaymentMethod
from tests.factories import (
    AccountFactory,
    AuditEventFactory,
    InvoiceFactory,
    MembershipFactory,
    PaymentAttemptFactory,
    PaymentMethodFactory,
    SettlementRunFactory,
    SuperuserFactory,
    SupportUserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _quick_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def url(obj_or_model, view, *args):
    opts = obj_or_model._meta
    if not isinstance(obj_or_model, type):
        args = (obj_or_model.pk, *args)
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args)


@pytest.fixture(params=["support", "superuser"])
def staff(request, client):
    user = SupportUserFactory() if request.param == "support" else SuperuserFactory()
    client.force_login(user)
    return user


def test_the_support_group_holds_exactly_what_support_needs():
    group = Group.objects.get(name="Support")

    granted = set(group.permissions.values_list("content_type__app_label", "codename"))

    assert granted == {
        ("accounts", "view_account"),
        ("accounts", "view_membership"),
        ("accounts", "view_auditevent"),
        ("payments", "view_paymentmethod"),
        ("invoices", "view_invoice"),
        ("invoices", "change_invoice"),
        ("invoices", "view_paymentattempt"),
        ("invoices", "view_settlementrun"),
        ("invoices", "view_webhookevent"),
        # Support refunds paid invoices (the refund page asks for add_refund).
        ("invoices", "view_refund"),
        ("invoices", "add_refund"),
        ("notifications", "view_sentemail"),
    }


@pytest.mark.parametrize("logged_in", [True, False])
def test_customers_get_the_admin_sign_in_page(client, logged_in):
    member = MembershipFactory()
    if logged_in:
        client.force_login(member.user)

    for page in ("/admin/", url(Invoice, "changelist"), url(member.account, "change")):
        response = client.get(page, follow=True)
        assert response.redirect_chain[0][0].startswith("/admin/login/"), page
        assert "admin/login.html" in [t.name for t in response.templates]


@pytest.fixture
def records():
    attempt = PaymentAttemptFactory()
    return {
        PaymentAttempt: attempt,
        SettlementRun: SettlementRunFactory(),
        AuditEvent: AuditEventFactory(account=attempt.invoice.account),
    }


@pytest.mark.parametrize("model", [PaymentAttempt, SettlementRun, AuditEvent])
def test_attempts_runs_and_audit_events_cannot_be_added_changed_or_deleted(client, staff, records, model):
    record = records[model]

    assert client.get(url(model, "add")).status_code == 403
    assert client.post(url(model, "add"), {}).status_code == 403
    assert client.post(url(record, "change"), {}).status_code == 403
    assert client.get(url(record, "delete")).status_code == 403
    assert client.post(url(record, "delete"), {"post": "yes"}).status_code == 403
    bulk = client.post(
        url(model, "changelist"),
        {"action": "delete_selected", "_selected_action": [record.pk], "post": "yes"},
    )
    assert bulk.status_code in (200, 302)
    assert model.objects.filter(pk=record.pk).exists()

    page = client.get(url(record, "change"))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="_save"' not in html and "Close" in html


def test_nothing_that_moved_money_can_be_deleted_or_added_by_hand(client, staff):
    method = PaymentMethodFactory()
    invoice = InvoiceFactory(account=method.account)

    for obj in (method, invoice, method.account):
        assert client.get(url(obj, "delete")).status_code == 403, obj
        assert client.post(url(obj, "delete"), {"post": "yes"}).status_code == 403, obj
    for model in (PaymentMethod, Invoice):
        assert client.get(url(model, "add")).status_code == 403, model
    assert Invoice.objects.filter(pk=invoice.pk).exists()


def test_an_invoice_page_is_read_only_even_for_a_superuser(client, staff):
    invoice = InvoiceFactory(amount_minor=12_500)

    html = client.get(url(invoice, "change")).content.decode()
    response = client.post(url(invoice, "change"), {"amount_minor": 1, "status": "paid"})

    assert 'name="amount_minor"' not in html and 'name="status"' not in html
    assert response.status_code == 403
    invoice.refresh_from_db()
    assert (invoice.amount_minor, invoice.status) == (12_500, Invoice.Status.OPEN)


def test_a_payment_method_page_is_read_only(client, staff):
    method = PaymentMethodFactory()

    response = client.post(url(method, "change"), {"last4": "0000", "status": "removed"})

    assert response.status_code == 403
    method.refresh_from_db()
    assert (method.last4, method.status) == ("4242", PaymentMethod.Status.ACTIVE)


def test_support_reads_accounts_but_cannot_change_them(client):
    client.force_login(SupportUserFactory())
    account = AccountFactory(name="Before")

    html = client.get(url(account, "change")).content.decode()
    response = client.post(url(account, "change"), {"name": "After", "billing_email": "x@example.com"})

    assert 'name="name"' not in html
    assert response.status_code == 403
    assert client.get(url(Account, "add")).status_code == 403
    account.refresh_from_db()
    assert account.name == "Before"


def test_a_superuser_may_correct_an_account_but_not_its_status(client):
    client.force_login(SuperuserFactory())
    account = AccountFactory(name="Before", status=Account.Status.PAST_DUE)
    form = {
        "name": "After",
        "billing_email": "billing@after.example",
        "currency": "EUR",
        "status": "active",
    }
    for prefix in ("memberships", "payment_methods", "invoices"):
        form |= {f"{prefix}-TOTAL_FORMS": 0, f"{prefix}-INITIAL_FORMS": 0}

    response = client.post(url(account, "change"), form)

    assert response.status_code == 302
    account.refresh_from_db()
    assert (account.name, account.currency, account.status) == ("After", "EUR", Account.Status.PAST_DUE)
