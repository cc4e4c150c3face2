"""No admin page shows a gateway token, a fingerprint, or more than the last four digits of a card or
bank account number: every page of every registered model is read, as support and as a superuser."""

import datetime

import pytest
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone

from invoices.models import Invoice
from payments.gateways import get_gateway
from payments.models import PaymentMethod
from payments.services import payment_method_create, payment_method_remove
from tests.factories import (
    AccountFactory,
    InvoiceFactory,
    MembershipFactory,
    SuperuserFactory,
    SupportUserFactory,
)

pytestmark = pytest.mark.django_db

CARDS = {
    "declines": "4000000000009995",
    "succeeds": "4242424242424242",
    "on_file": "5555555555554444",
    "removed": "4000000000009987",
}
IBAN = "DE89370400440532013000"
ROUTING, ACH_ACCOUNT = "110000000", "000123456789"
NUMBERS = [*CARDS.values(), IBAN, ACH_ACCOUNT]
CHANGELIST = reverse("admin:invoices_invoice_changelist")


@pytest.fixture(autouse=True)
def _quick_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def keep(account, tokenized):
    return payment_method_create(
        account=account, actor=None, tokenized=tokenized, gateway=get_gateway().name, add_to_order=True
    )


@pytest.fixture
def world(client):
    """An account whose methods came through the sandbox from real test numbers, and whose invoices
    were settled by support through the admin (attempts, audit events, emails, all recorded)."""
    gateway = get_gateway()
    account = AccountFactory(currency="USD")
    MembershipFactory(account=account)
    for name in ("declines", "succeeds", "on_file", "removed"):
        keep(account, gateway.tokenize_card(number=CARDS[name], exp_month=12, exp_year=2030, cvc="123"))
    keep(account, gateway.tokenize_sepa_debit(iban=IBAN, account_holder="Erika Mustermann"))
    keep(
        account,
        gateway.tokenize_ach_debit(
            routing_number=ROUTING, account_number=ACH_ACCOUNT, account_holder="J Doe"
        ),
    )
    payment_method_remove(method=account.payment_methods.get(last4=CARDS["removed"][-4:]), actor=None)
    past_due = InvoiceFactory(
        account=account,
        number="INV-SECRETS-1",
        status=Invoice.Status.PAST_DUE,
        next_attempt_at=timezone.now() + datetime.timedelta(days=1),
    )
    InvoiceFactory(account=account, number="INV-SECRETS-2")
    client.force_login(SupportUserFactory())
    client.post(CHANGELIST, {"action": "retry_now", "_selected_action": [past_due.pk], "post": "yes"})
    client.logout()
    past_due.refresh_from_db()
    assert past_due.paid_by_backup, "the primary declined and a backup paid"
    return account


def admin_pages():
    yield "/admin/"
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        yield changelist
        if model_admin.search_fields:
            yield f"{changelist}?q=4242"
        for obj in model._default_manager.order_by("-pk")[:30]:
            for view in ("change", "history"):
                yield reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=[obj.pk])


def leaks(html: str, secrets: list[str]) -> list[str]:
    found = [secret for secret in secrets if secret in html]
    for number in NUMBERS:
        grouped = " ".join(number[i : i + 4] for i in range(0, len(number), 4))
        found += [number[-k:] for k in range(5, len(number) + 1) if number[-k:] in html]
        found += [form for form in (number[:8], grouped) if form in html]
    return found


@pytest.mark.parametrize("who", ["support", "superuser"])
def test_no_admin_page_shows_a_token_or_more_than_the_last_four_digits(client, world, who):
    methods = list(PaymentMethod.objects.filter(account=world))
    assert len(methods) == 6
    secrets = [m.token for m in methods] + [m.fingerprint for m in methods]
    client.force_login(SupportUserFactory() if who == "support" else SuperuserFactory())

    pages = {}
    for page in admin_pages():
        response = client.get(page)
        assert response.status_code in (200, 403), page
        if response.status_code == 200:
            pages[page] = response.content.decode()
    invoices = [i.pk for i in Invoice.objects.all()]
    for action in ("retry_now", "void", "mark_uncollectible"):
        response = client.post(CHANGELIST, {"action": action, "_selected_action": invoices, "index": 0})
        pages[f"confirm {action}"] = response.content.decode()

    assert any("•••• 4242" in html for html in pages.values()), "masked labels are shown"
    exposed = {page: found for page, html in pages.items() if (found := leaks(html, secrets))}
    assert not exposed
