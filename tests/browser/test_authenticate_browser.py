"""The authenticate page in Chromium, against localstripe and the fake Stripe.js it serves: the
customer confirms a charge their bank asked about (3-D Secure) and the invoice is paid, as Stripe
reports it. No inline script: the page loads Stripe.js through its own static file."""

import re

import pytest
from playwright.sync_api import expect

from accounts.models import Membership, Profile
from invoices.models import Invoice, PaymentAttempt
from invoices.settlement import invoice_pay_now
from tests.browser.test_axe_languages import check
from tests.factories import AccountFactory, InvoiceFactory, MembershipFactory, UserFactory
from tests.stripe_support import use_localstripe
from tests.test_stripe_localstripe import _save_card

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ASKS_FOR_3DS = "4000002760003184"


@pytest.fixture
def on_localstripe(settings, localstripe):
    """The Stripe gateway on localstripe (tests/conftest.py), with the CSP as deployed: the page
    itself must allow the fake Stripe's origins."""
    return use_localstripe(settings, localstripe)


@pytest.mark.parametrize("language", ["en", "ja"])
def test_the_customer_confirms_with_their_bank_and_the_invoice_is_paid(
    browser, live_server, on_localstripe, language
):
    user = UserFactory(username="aiko", password="demo")
    Profile.objects.create(user=user, language=language)
    account = AccountFactory()
    MembershipFactory(user=user, account=account, role=Membership.Role.OWNER)
    _save_card(on_localstripe, account, ASKS_FOR_3DS)
    invoice = InvoiceFactory(account=account, currency="USD", amount_minor=3100)
    invoice_pay_now(invoice=invoice, actor=None)
    attempt = invoice.attempts.get()
    assert attempt.status == PaymentAttempt.Status.REQUIRES_ACTION

    context = browser.new_context(base_url=live_server.url)
    page = context.new_page()
    problems = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto("/sign-in/")
    page.locator("#id_username").fill("aiko")
    page.locator("#id_password").fill("demo")
    page.locator("form.form button[type=submit]").click()
    expect(page).to_have_url(re.compile("/$"))
    page.goto(f"/invoices/{invoice.pk}/authenticate/")
    check(page, "authenticate", language)  # axe: no serious violation, in either language
    page.locator("#authenticate-button").click()
    page.get_by_role("button", name="Complete authentication").click()  # the fake bank's dialog
    expect(page).to_have_url(re.compile(rf"/invoices/{invoice.pk}/$"))
    expect(page.locator(".flash--success")).to_be_visible()
    context.close()

    invoice.refresh_from_db()
    assert (invoice.status, invoice.paid_by_attempt_id) == (Invoice.Status.PAID, attempt.pk)
    assert on_localstripe.v1.payment_intents.retrieve(attempt.gateway_reference).status == "succeeded"
    assert not [p for p in problems if "favicon" not in p], problems
