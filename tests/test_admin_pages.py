"""Every admin page renders, for support staff and superusers, in a number of queries that does not
grow with the rows it shows."""

import re

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account
from invoices.models import Invoice, PaymentAttempt
from payments.models import PaymentMethod
from tests.factories import (
    AccountFactory,
    AuditEventFactory,
    ChargeOrderEntryFactory,
    InvoiceFactory,
    MembershipFactory,
    PaymentAttemptFactory,
    PaymentMethodFactory,
    SentEmailFactory,
    SettlementRunFactory,
    SuperuserFactory,
    SupportUserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _quick_passwords(settings):
    # Every member is a user; the production hasher would spend seconds on the rows alone.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# Support sees the billing apps; users, groups and API tokens are for superusers only.
SUPPORT_APPS = {"accounts", "payments", "invoices", "notifications"}


def changelist_url(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def change_url(obj) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


class World:
    """One account and one invoice that gain rows with every `grow`, plus more of everything else."""

    def __init__(self):
        self.account = AccountFactory()
        self.invoice = InvoiceFactory(account=self.account)
        self.rows = 0

    def grow(self, n: int, *, actor) -> None:
        for _ in range(n):
            self.rows += 1
            MembershipFactory(account=self.account)
            method = PaymentMethodFactory(account=self.account)
            ChargeOrderEntryFactory(method=method, position=self.rows)
            PaymentMethodFactory(account=self.account, status="removed", removed_at=timezone.now())
            run = SettlementRunFactory(finished_at=timezone.now())
            if self.rows % 2:
                PaymentAttemptFactory(invoice=self.invoice, method=method, position=self.rows, run=run)
            else:
                PaymentAttemptFactory(
                    invoice=self.invoice,
                    method=method,
                    position=self.rows,
                    status=PaymentAttempt.Status.SKIPPED,
                    idempotency_key=None,
                    skip_reason=PaymentAttempt.SkipReason.EXPIRED,
                    decline_code="",
                    decline_class="",
                    initiated_by=actor,
                    trigger=PaymentAttempt.Trigger.STAFF_RETRY,
                )
            self._paid_invoice(method)
            AuditEventFactory(
                account=self.account,
                actor=actor,
                object_type="invoice",
                object_id=str(self.invoice.pk),
                before={"status": "open"},
                after={"status": "paid"},
            )
            SentEmailFactory(account=self.account)
            InvoiceFactory(account=AccountFactory(currency="JPY"), amount_minor=1500)

    def _paid_invoice(self, method) -> None:
        invoice = InvoiceFactory(account=self.account)
        attempt = PaymentAttemptFactory(
            invoice=invoice,
            method=method,
            position=2,
            status=PaymentAttempt.Status.SUCCEEDED,
            decline_code="",
            decline_class="",
        )
        Invoice.objects.filter(pk=invoice.pk).update(
            status=Invoice.Status.PAID,
            paid_at=timezone.now(),
            paid_by_attempt=attempt,
            paid_by_method=method,
            paid_by_backup=True,
        )

    def subject(self, model):
        """The object whose change page is measured: the one that gains rows, where there is one."""
        chosen = {
            Account: self.account,
            Invoice: self.invoice,
            PaymentAttempt: self.invoice.attempts.order_by("pk").first(),
            PaymentMethod: self.account.payment_methods.order_by("pk").first(),
        }.get(model)
        return chosen or model._default_manager.order_by("pk").first()


def pages_for(world: World, models) -> list[str]:
    urls = ["/admin/"]
    for model in models:
        urls.append(changelist_url(model))
        subject = world.subject(model)
        if subject is not None:
            urls.append(change_url(subject))
    return urls


def query_counts(client, urls) -> dict[str, int]:
    counts = {}
    for url in urls:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        assert response.status_code == 200, f"{url} answered {response.status_code}"
        counts[url] = len(queries)
    return counts


def assert_constant_queries(client, user, models) -> None:
    world = World()
    world.grow(2, actor=user)
    urls = pages_for(world, models)
    with_two = query_counts(client, urls)
    world.grow(18, actor=user)
    with_twenty = query_counts(client, urls)
    grew = {url: (with_two[url], n) for url, n in with_twenty.items() if n > with_two[url]}
    assert not grew, f"queries grew with the rows (2 rows → 20 rows): {grew}"
    assert max(with_twenty.values()) <= 25, with_twenty


def test_support_sees_every_billing_page_in_constant_queries(client):
    support = SupportUserFactory()
    client.force_login(support)
    models = [m for m in admin.site._registry if m._meta.app_label in SUPPORT_APPS]
    assert {m._meta.model_name for m in models} >= {
        "account",
        "auditevent",
        "paymentmethod",
        "invoice",
        "paymentattempt",
        "settlementrun",
        "sentemail",
    }

    assert_constant_queries(client, support, models)


def test_support_is_refused_every_other_admin_page(client):
    client.force_login(SupportUserFactory())
    others = [m for m in admin.site._registry if m._meta.app_label not in SUPPORT_APPS]
    assert others, "auth's models at least are registered"

    for model in others:
        assert client.get(changelist_url(model)).status_code == 403, model
    assert client.get(change_url(Group.objects.get(name="Support"))).status_code == 403


def test_superuser_sees_every_registered_page_in_constant_queries(client):
    superuser = SuperuserFactory()
    client.force_login(superuser)

    assert_constant_queries(client, superuser, list(admin.site._registry))


def test_account_page_shows_members_methods_in_charge_order_and_invoices(client):
    client.force_login(SupportUserFactory())
    account = AccountFactory(name="Hokusai Cloud")
    member = MembershipFactory(account=account, user__email="yuki@hokusai.example")
    backup = PaymentMethodFactory(account=account, brand="Mastercard", last4="4444")
    primary = PaymentMethodFactory(account=account, brand="Visa", last4="0002")
    ChargeOrderEntryFactory(method=primary, position=1)
    ChargeOrderEntryFactory(method=backup, position=2)
    PaymentMethodFactory(account=account, brand="Amex", last4="0005")
    invoice = InvoiceFactory(account=account, number="INV-JP-7")

    html = client.get(change_url(account)).content.decode()

    assert member.user.email in html
    order = [html.index(label) for label in ("Visa •••• 0002", "Mastercard •••• 4444", "Amex •••• 0005")]
    assert order == sorted(order), "methods are listed in charge order, then those on file"
    assert "Primary" in html and "Backup 1" in html and "Not in the charge order" in html
    assert invoice.number in html and "$125.00" in html


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("Hokusai", True),
        ("billing@hokusai.example", True),
        ("yuki@hokusai.example", True),
        ("INV-JP-7", True),
    ],
)
def test_accounts_are_found_by_name_billing_email_member_email_and_invoice_number(client, query, found):
    client.force_login(SupportUserFactory())
    account = AccountFactory(name="Hokusai Cloud", billing_email="billing@hokusai.example")
    MembershipFactory(account=account, user__email="yuki@hokusai.example")
    InvoiceFactory(account=account, number="INV-JP-7")
    InvoiceFactory(number="INV-OTHER")

    response = client.get(changelist_url(Account), {"q": query})

    assert list(response.context["cl"].result_list) == [account]


def test_invoices_filter_by_status_currency_due_date_and_paid_by_backup(client):
    client.force_login(SupportUserFactory())
    world = World()
    world.grow(2, actor=None)
    url = changelist_url(Invoice)

    def shown(**params):
        return set(client.get(url, params).context["cl"].result_list)

    assert all(i.status == "paid" for i in shown(status__exact="paid"))
    in_yen = shown(currency="JPY")
    assert in_yen and all(i.currency == "JPY" for i in in_yen)
    by_backup = shown(paid_by_backup__exact="1")
    assert by_backup and all(i.paid_by_backup for i in by_backup)
    assert shown(due="today") == set(Invoice.objects.filter(due_on=timezone.localdate()))
    assert shown(q=world.invoice.number) == {world.invoice}
    assert shown(q=world.account.name) == set(world.account.invoices.all())


def test_an_invoice_page_explains_why_a_backup_was_charged(client):
    client.force_login(SupportUserFactory())
    account = AccountFactory()
    primary = PaymentMethodFactory(account=account, brand="Visa", last4="0002")
    backup = PaymentMethodFactory(account=account, brand="Mastercard", last4="4444")
    invoice = InvoiceFactory(account=account)
    PaymentAttemptFactory(invoice=invoice, method=primary, position=1, sequence=1)
    paying = PaymentAttemptFactory(
        invoice=invoice,
        method=backup,
        position=2,
        sequence=2,
        status=PaymentAttempt.Status.SUCCEEDED,
        decline_code="",
        decline_class="",
    )
    Invoice.objects.filter(pk=invoice.pk).update(
        status=Invoice.Status.PAID,
        paid_at=timezone.now(),
        paid_by_attempt=paying,
        paid_by_method=backup,
        paid_by_backup=True,
    )

    html = client.get(change_url(invoice)).content.decode()

    assert "by Mastercard •••• 4444 (Backup 1)" in html
    assert "Primary Visa •••• 0002 — declined: generic_decline (soft)" in html


def account_of(row) -> int:
    return row.invoice.account_id if isinstance(row, PaymentAttempt) else row.account_id


def test_an_account_page_shows_its_latest_invoices_and_links_to_all_its_records(client):
    client.force_login(SupportUserFactory())
    world = World()
    world.grow(21, actor=None)

    html = client.get(change_url(world.account)).content.decode()

    shown = set(re.findall(r">(INV-\d+)</a>", html))
    latest = world.account.invoices.order_by("-due_on", "-pk")
    assert shown == {i.number for i in latest[:20]}
    links = re.findall(r'href="(/admin/[a-z]+/[a-z]+/\?[^"]+)"', html)
    assert len(links) == 5
    for link in links:
        response = client.get(link.replace("&amp;", "&"))
        assert response.status_code == 200, link
        rows = list(response.context["cl"].result_list)
        assert rows, link
        assert {account_of(row) for row in rows} == {world.account.pk}, link


def test_an_invoice_page_links_to_its_audit_trail(client):
    client.force_login(SupportUserFactory())
    world = World()
    world.grow(2, actor=None)

    html = client.get(change_url(world.invoice)).content.decode()
    [link] = re.findall(r'href="(/admin/accounts/auditevent/\?[^"]+)"', html)
    response = client.get(link.replace("&amp;", "&"))

    events = list(response.context["cl"].result_list)
    assert len(events) == 2 and {e.object_id for e in events} == {str(world.invoice.pk)}


def test_a_killed_run_shows_as_interrupted_in_admin(client):
    from invoices.models import SettlementRun

    client.force_login(SupportUserFactory())
    silent_since = timezone.now() - timezone.timedelta(minutes=10)
    run = SettlementRunFactory(status=SettlementRun.Status.RUNNING, heartbeat_at=silent_since, paid=3)

    response = client.get(reverse("admin:invoices_settlementrun_changelist"))

    assert response.status_code == 200
    run.refresh_from_db()
    assert (run.status, run.finished_at, run.paid) == (SettlementRun.Status.INTERRUPTED, silent_since, 3)
    assert "Interrupted" in response.content.decode()
