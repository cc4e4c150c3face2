"""What each console page shows: dashboard warnings, invoices, the timeline, Pay now, settings."""

import datetime

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent, Membership, Profile
from billing_console.views.verdict import PLANNED_INVOICES
from core.money import format_money
from invoices.models import Invoice, PaymentAttempt
from tests.factories import (
    AccountFactory,
    AuditEventFactory,
    ChargeOrderEntryFactory,
    InvoiceFactory,
    MembershipFactory,
    PaymentAttemptFactory,
    PaymentMethodFactory,
)
from tests.utils import GENERIC_DECLINE, SUCCEEDS, add_card

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(client):
    membership = MembershipFactory(role=Membership.Role.OWNER, account=AccountFactory(name="Acme"))
    client.force_login(membership.user)
    return membership


def _page(client, name, *args, **query):
    response = client.get(reverse(name, args=args), query)
    assert response.status_code == 200
    return response.content.decode()


@time_machine.travel(datetime.datetime(2026, 3, 10, 12, tzinfo=datetime.UTC), tick=False)
def test_dashboard_warnings_each_with_the_action_that_fixes_it(client, owner):
    account = owner.account
    primary = PaymentMethodFactory(account=account, last4="0002", exp_month=3, exp_year=2026)
    ChargeOrderEntryFactory(method=primary, position=1)
    spare = PaymentMethodFactory(account=account, last4="7777")
    backup = PaymentMethodFactory(account=account, last4="4242")
    paid = InvoiceFactory(account=account, number="INV-PAID", status=Invoice.Status.OPEN)
    attempt = PaymentAttemptFactory(
        invoice=paid, method=backup, position=2, status="succeeded", decline_code=""
    )
    Invoice.objects.filter(pk=paid.pk).update(
        status="paid",
        paid_at=timezone.now(),
        paid_by_attempt=attempt,
        paid_by_method=backup,
        paid_by_backup=True,
    )
    late = InvoiceFactory(
        account=account,
        number="INV-LATE",
        status=Invoice.Status.PAST_DUE,
        amount_minor=4_200_00,
        due_on=datetime.date(2026, 3, 1),
        issued_on=datetime.date(2026, 2, 15),
    )
    body = _page(client, "dashboard")
    assert "<title>Dashboard · Acme · Billing console</title>" in body
    assert "Your primary method Visa •••• 0002 expires on March 2026." in body
    assert f'href="{reverse("payment_method_expiry", args=[primary.pk])}">Update expiry date' in body
    assert "No backup method is set" in body
    assert f"Add Visa •••• {spare.last4} to backups" in body or "Add Visa •••• 4242 to backups" in body
    assert "Your last invoice, INV-PAID, was paid by a backup (Visa •••• 4242)" in body
    assert "Invoice INV-LATE ($4,200.00) is past due" in body
    assert f'action="{reverse("invoice_pay_now", args=[late.pk])}"' in body
    assert "$4,200.00" in body  # amount due


def test_dashboard_when_all_is_well(client, owner):
    for position in (1, 2):
        ChargeOrderEntryFactory(method=PaymentMethodFactory(account=owner.account), position=position)
    body = _page(client, "dashboard")
    assert "All good" in body


def test_dashboard_without_any_method(client, owner):
    body = _page(client, "dashboard")
    assert "There is no payment method in your charge order" in body
    assert reverse("payment_method_add", args=["card"]) in body


@pytest.mark.parametrize("open_invoices", [3, PLANNED_INVOICES, PLANNED_INVOICES + 1, PLANNED_INVOICES + 7])
def test_dashboard_amount_due_adds_up_every_open_invoice_per_currency(client, owner, open_invoices):
    """Up to PLANNED_INVOICES the total is added up from the verdict's invoices, beyond that by the
    database: the same totals either way, and uncollectible or void invoices count in neither."""
    account = owner.account
    for n in range(open_invoices):
        InvoiceFactory(account=account, currency="USD", amount_minor=100_00 + n, status=Invoice.Status.OPEN)
    InvoiceFactory(account=account, currency="EUR", amount_minor=7_00, status=Invoice.Status.PAST_DUE)
    InvoiceFactory(account=account, currency="USD", amount_minor=999_00, status=Invoice.Status.UNCOLLECTIBLE)
    InvoiceFactory(account=account, currency="USD", amount_minor=888_00, status=Invoice.Status.VOID)
    usd = sum(100_00 + n for n in range(open_invoices))
    body = _page(client, "dashboard")
    assert f'<p class="stat__value">{format_money(usd, "USD")}</p>' in body
    assert '<p class="stat__value">€7.00</p>' in body
    assert f"{open_invoices + 1} unpaid invoices" in body


@pytest.mark.parametrize(
    ("currency", "amount", "shown"),
    [
        ("USD", 1234567, "$12,345.67"),
        ("JPY", 1234567, "¥1,234,567"),
        ("KWD", 1234567, "KWD1,234.567"),
        ("EUR", 5, "€0.05"),
    ],
)
def test_money_in_its_currencys_own_format(client, owner, currency, amount, shown):
    InvoiceFactory(account=owner.account, currency=currency, amount_minor=amount)
    assert shown in _page(client, "invoices")


def test_money_follows_the_members_language(client, owner):
    Profile.objects.create(user=owner.user, language="ja")
    InvoiceFactory(account=owner.account, currency="EUR", amount_minor=123456)
    body = _page(client, "invoices")
    assert "€1,234.56" in body
    assert '<html lang="ja"' in body


def test_times_in_the_members_time_zone(client, owner):
    AuditEventFactory(account=owner.account)
    AuditEvent.objects.update(created_at=datetime.datetime(2026, 1, 5, 23, 30, tzinfo=datetime.UTC))
    assert "11:30 p.m." in _page(client, "activity")
    Profile.objects.create(user=owner.user, time_zone="Asia/Tokyo")
    body = _page(client, "activity")
    assert "Jan. 6, 2026, 8:30 a.m." in body


def test_invoice_list_filters_by_status_and_paginates(client, owner):
    for n in range(30):
        InvoiceFactory(account=owner.account, number=f"OPEN-{n:02d}")
    InvoiceFactory(account=owner.account, number="LATE-1", status=Invoice.Status.PAST_DUE)
    body = _page(client, "invoices")
    assert "Page 1 of 2" in body
    assert body.count("<tr>") == 1 + 25
    body = _page(client, "invoices", page=2)
    assert body.count("<tr>") == 1 + 6
    body = _page(client, "invoices", status="past_due")
    assert "LATE-1" in body and "OPEN-01" not in body and "Page 1 of" not in body
    assert 'aria-current="page">Past due' in body
    assert "No invoice has this status." in _page(client, "invoices", status="void")
    # Nonsense filters and pages fall back to something sensible.
    assert "OPEN-" in _page(client, "invoices", status="nope", page="x")


@pytest.mark.parametrize(
    ("language", "backup", "download"),
    [("en", "backup", "Download invoice INV-9 as PDF"), ("ja", "予備", "請求書 INV-9 を PDF でダウンロード")],
)
def test_an_invoice_row_names_what_paid_it_and_escapes_what_was_written(
    client, owner, language, backup, download
):
    Profile.objects.create(user=owner.user, language=language)
    account = owner.account
    card = PaymentMethodFactory(account=account, brand="Visa", last4="4242")
    invoice = InvoiceFactory(account=account, number="INV-9", description="<b>Seats</b> & " + "x" * 80)
    attempt = PaymentAttemptFactory(
        invoice=invoice, method=card, position=2, status="succeeded", decline_code=""
    )
    Invoice.objects.filter(pk=invoice.pk).update(
        status="paid",
        paid_at=timezone.now(),
        paid_by_attempt=attempt,
        paid_by_method=card,
        paid_by_backup=True,
    )
    other = InvoiceFactory(account=account, number="INV-10", description="")
    body = _page(client, "invoices")
    detail = reverse("invoice_detail", args=[invoice.pk])
    assert f'<th scope="row" class="c-main"><a href="{detail}">INV-9</a><span class="cell-sub">' in body
    assert "&lt;b&gt;Seats&lt;/b&gt; &amp; xxx" in body and "<b>Seats" not in body
    assert f'Visa •••• 4242 <span class="tag">{backup}</span>' in body
    assert f'href="{reverse("invoice_pdf", args=[invoice.pk])}" download' in body
    assert f'<span class="visually-hidden">{download}</span>' in body
    # No description, no method yet: no sub-line, a dash.
    row = body[body.index(reverse("invoice_detail", args=[other.pk])) :]
    row = row[: row.index("</tr>")]
    assert "cell-sub" not in row and '<span class="muted">—</span>' in row


def test_badges_carry_words_and_a_shape(client, owner):
    InvoiceFactory(account=owner.account, status=Invoice.Status.PAST_DUE)
    InvoiceFactory(account=owner.account, status=Invoice.Status.UNCOLLECTIBLE)
    body = _page(client, "invoices")
    assert (
        '<span class="badge badge--danger"><span class="badge__icon" aria-hidden="true">!</span>'
        "Past due</span>" in body
    )
    assert "✕</span>Uncollectible</span>" in body


def test_an_invoice_with_a_payment_in_flight_shows_pending(client, owner):
    invoice = InvoiceFactory(account=owner.account)
    PaymentAttemptFactory(
        invoice=invoice, status=PaymentAttempt.Status.PENDING, decline_code="", decline_class=""
    )
    assert "◔</span>Pending</span>" in _page(client, "invoices")


def test_invoice_detail_timeline_in_plain_words(client, owner):
    account = owner.account
    primary = PaymentMethodFactory(account=account, last4="0002")
    backup = PaymentMethodFactory(account=account, last4="4242")
    invoice = InvoiceFactory(account=account, number="INV-1", status=Invoice.Status.PAST_DUE)
    PaymentAttemptFactory(invoice=invoice, sequence=1, method=primary, position=1)
    PaymentAttemptFactory(
        invoice=invoice, sequence=2, method=backup, position=2, decline_code="lost_card", decline_class="hard"
    )
    body = _page(client, "invoice_detail", invoice.pk)
    assert "<title>Invoice INV-1 · Acme · Billing console</title>" in body
    assert "Visa •••• 0002 was declined: generic decline — we tried Backup 1 next." in body
    assert (
        "Visa •••• 4242 was declined: the card was reported lost — no other method was left to try." in body
    )
    assert "will not be tried again until it is updated" in body


def test_invoice_detail_previews_the_next_run(client, owner):
    account = owner.account
    ok = PaymentMethodFactory(account=account, last4="4242")
    expired = PaymentMethodFactory(account=account, last4="0069", exp_month=1, exp_year=2020)
    ChargeOrderEntryFactory(method=expired, position=1)
    ChargeOrderEntryFactory(method=ok, position=2)
    invoice = InvoiceFactory(account=account)
    body = _page(client, "invoice_detail", invoice.pk)
    body = body[body.index("What the next run will do") :]
    assert body.index("0069") < body.index("Will skip") < body.index("4242")
    assert "The method had expired" in body
    assert "Will try" in body


def test_pay_now_is_paid_by_a_backup_when_the_primary_declines(client, owner):
    account = owner.account
    add_card(account, GENERIC_DECLINE)
    add_card(account, SUCCEEDS)
    invoice = InvoiceFactory(account=account, number="INV-NOW", status=Invoice.Status.PAST_DUE)
    response = client.post(reverse("invoice_pay_now", args=[invoice.pk]))
    assert response.status_code == 302 and response.url == reverse("invoice_detail", args=[invoice.pk])
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID and invoice.paid_by_backup
    body = _page(client, "invoice_detail", invoice.pk)
    assert "Visa •••• 0002 was declined: generic decline — we tried Backup 1 next." in body
    assert "Visa •••• 4242 (Backup 1) was charged $125.00." in body
    assert "Pay now by" in body


def test_pay_now_with_a_chosen_method(client, owner):
    account = owner.account
    add_card(account, GENERIC_DECLINE)
    chosen = add_card(account, SUCCEEDS, in_order=False)
    invoice = InvoiceFactory(account=account, status=Invoice.Status.PAST_DUE)
    client.post(reverse("invoice_pay_now", args=[invoice.pk]), {"method": chosen.pk})
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID and invoice.paid_by_method_id == chosen.pk


def test_pay_now_refuses_another_accounts_method(client, owner):
    add_card(owner.account, SUCCEEDS)
    foreign = PaymentMethodFactory()
    invoice = InvoiceFactory(account=owner.account)
    response = client.post(reverse("invoice_pay_now", args=[invoice.pk]), {"method": foreign.pk}, follow=True)
    assert "Choose one of your payment methods." in response.content.decode()
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.OPEN


def test_activity_log_in_plain_words(client, owner):
    account = owner.account
    a = PaymentMethodFactory(account=account, last4="1111")
    b = PaymentMethodFactory(account=account, last4="2222")
    AuditEventFactory(
        account=account, actor_label="dana", before={"order": [a.pk]}, after={"order": [b.pk, a.pk]}
    )
    body = _page(client, "activity")
    assert "Primary: Visa •••• 1111 → Primary: Visa •••• 2222 · Backup 1: Visa •••• 1111" in body
    assert "Charge order changed" in body


def test_settings_change_language_time_zone_and_optional_emails(client, owner):
    body = _page(client, "settings")
    assert 'value="Asia/Tokyo"' in body
    response = client.post(
        reverse("settings"), {"language": "ja", "time_zone": "Asia/Tokyo", "email_opt_out": "on"}
    )
    assert response.status_code == 302
    profile = Profile.objects.get(user=owner.user)
    assert (profile.language, profile.time_zone) == ("ja", "Asia/Tokyo")
    owner.refresh_from_db()
    assert owner.email_opt_out
    assert '<html lang="ja"' in _page(client, "settings")
    response = client.post(reverse("settings"), {"time_zone": "Mars/Olympus"})
    assert response.status_code == 200 and "time_zone" in response.context["form"].errors
