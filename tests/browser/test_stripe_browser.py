"""Saving cards and a SEPA account through Stripe.js in Chromium, with the Stripe gateway pointed at
localstripe (its fake Stripe.js included), then a settlement run that charges them in rank.

Every request the browser sends to our server is recorded: no card number or IBAN is among them, nor
in any table of either database, nor in the logs.
"""

import logging
import re

import pytest
from django.core.cache import cache
from django.db import connections
from playwright.sync_api import expect

from accounts.models import Membership, Profile
from invoices.models import Invoice, PaymentAttempt
from payments.models import PaymentMethod
from payments.services import charge_order_ids
from tests import utils
from tests.browser.test_axe_languages import check
from tests.factories import AccountFactory, InvoiceFactory, MembershipFactory, UserFactory
from tests.stripe_support import KEYS, intents_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SUCCEEDS = "4242424242424242"
DECLINED_WHEN_SAVED = "4000000000000002"
DECLINED_WHEN_CHARGED = "4000000000000341"
IBAN = "DE89370400440532013000"
SECRETS = (SUCCEEDS, DECLINED_WHEN_SAVED, DECLINED_WHEN_CHARGED, IBAN)


def _forms(secret: str) -> set[str]:
    """The ways a number may be written: as typed, in groups of four, URL-encoded."""
    grouped = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    return {secret, grouped, grouped.replace(" ", "+"), grouped.replace(" ", "%20")}


@pytest.fixture
def owner(stripe_gateway):
    cache.clear()
    user = UserFactory(username="stripe-owner", password="demo", email="owner@acme.example")
    account = AccountFactory(name="Acme Robotics", billing_email="billing@acme.example")
    MembershipFactory(user=user, account=account, role=Membership.Role.OWNER)
    return account


@pytest.fixture
def signed_in(browser, live_server, owner):
    """A signed-in page that records every request to our server and every browser error."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=live_server.url)
    page = context.new_page()
    page.sent = []
    page.problems = []

    def record(request):
        if request.url.startswith(live_server.url):
            page.sent.append(
                " ".join([request.method, request.url, str(request.headers), request.post_data or ""])
            )

    page.on("request", record)
    page.on("console", lambda m: page.problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page.problems.append(str(e)))
    page.goto("/sign-in/")
    page.get_by_label("Username").fill("stripe-owner")
    page.get_by_label("Password").fill("demo")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_title(re.compile("^Dashboard"))
    yield page
    context.close()


def _fill_card(page, number):
    # localstripe's Card Element: plain inputs in the mount point (the real one is Stripe's frame).
    element = page.locator("#stripe-card")
    element.locator("input[placeholder=number]").fill(number)
    element.locator("input[placeholder=exp_month]").fill("12")
    element.locator("input[placeholder=exp_year]").fill("40")
    element.locator("input[placeholder=cvc]").fill("123")


def _dump_databases() -> str:
    """Every value of every row of every table, in both databases, as text."""
    text = []
    for alias in ("default", "sandbox"):
        connection = connections[alias]
        with connection.cursor() as cursor:
            for table in connection.introspection.table_names(cursor):
                cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
                text.extend(str(value) for row in cursor.fetchall() for value in row)
    return "\n".join(text)


def test_cards_and_a_sepa_account_saved_with_stripe_js_are_charged_in_rank(
    signed_in, owner, localstripe, stripe_gateway, caplog
):
    caplog.set_level(logging.DEBUG)
    page = signed_in

    # A card Stripe refuses to save: the page says so, and nothing reaches our records.
    page.goto("/payment-methods/add/card/")
    expect(page.get_by_role("heading", name="Add a card")).to_be_visible()
    _fill_card(page, DECLINED_WHEN_SAVED)
    page.get_by_role("button", name="Add card").click()
    expect(page.locator("#stripe-error")).to_contain_text("declined")
    assert not PaymentMethod.objects.filter(account=owner).exists()

    # The same page, another card: saved, ranked primary.
    _fill_card(page, SUCCEEDS)
    page.get_by_role("button", name="Add card").click()
    expect(page.locator(".flash--success")).to_contain_text("Visa •••• 4242 is now Primary")

    page.goto("/payment-methods/add/card/")
    _fill_card(page, DECLINED_WHEN_CHARGED)
    page.get_by_role("button", name="Add card").click()
    expect(page.locator(".flash--success")).to_contain_text("•••• 0341 is now Backup 1")

    page.goto("/payment-methods/add/sepa/")
    expect(page.locator("#sepa-mandate")).to_contain_text("Stripe, our payment service provider")
    page.get_by_label("Account holder").fill("Hanako Yamada")
    page.get_by_label("IBAN").fill("DE89 3704 0044 0532 0130 00")
    page.get_by_role("button", name="Add bank account").click()
    expect(page.locator(".flash--success")).to_contain_text("3000 is now Backup 2")

    methods = {m.last4: m for m in PaymentMethod.objects.filter(account=owner)}
    assert set(methods) == {"4242", "0341", "3000"}
    for method in methods.values():
        assert method.gateway == "stripe" and method.token.startswith("pm_") and method.fingerprint
    card, declines, sepa = methods["4242"], methods["0341"], methods["3000"]
    assert (card.brand, card.exp_month, card.exp_year) == ("Visa", 12, 2040)
    assert sepa.kind == PaymentMethod.Kind.SEPA_DEBIT
    stripe_card = stripe_gateway.v1.payment_methods.retrieve(card.token)
    assert card.fingerprint == stripe_card.card.fingerprint
    assert stripe_card.customer  # attached to the account's customer, for off-session charges

    # Rank with the buttons: the card that declines on charge first, the working card next.
    page.goto("/payment-methods/")
    page.locator(f"#method-{declines.pk}").get_by_role("button", name="Make primary", exact=True).click()
    expect(page.locator(".flash--success")).to_contain_text("is now Primary")
    assert charge_order_ids(account=owner) == [declines.pk, card.pk, sepa.pk]

    invoice = InvoiceFactory(account=owner, currency="USD", amount_minor=4200)
    env = utils.command_env(PAYMENT_GATEWAY="stripe", STRIPE_API_BASE=localstripe, LOG_LEVEL="DEBUG", **KEYS)
    settle = utils.manage("settle_invoices", "--json", env=env)
    out, err = settle.communicate(timeout=300)
    assert settle.returncode == 0, err

    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    assert invoice.paid_by_method_id == card.pk
    attempts = PaymentAttempt.objects.filter(invoice=invoice).order_by("sequence")
    assert [(a.method_id, a.status) for a in attempts] == [(declines.pk, "failed"), (card.pk, "succeeded")]
    succeeded = [i for i in intents_for(stripe_gateway, invoice.number) if i.status == "succeeded"]
    assert [(i.payment_method, i.amount) for i in succeeded] == [(card.token, 4200)]

    # The numbers went to Stripe only.
    assert any("setup_intent=seti_" in sent for sent in page.sent)
    stored, logged = _dump_databases(), "\n".join([caplog.text, out, err])
    for secret in SECRETS:
        for written in _forms(secret):
            assert not [sent for sent in page.sent if written in sent], written
            assert written not in stored, written
            assert written not in logged, written
    # No CSP violation, no script error; only Stripe's own 402 for the card it refused.
    assert [p for p in page.problems if "status of 402" not in p] == [], page.problems


def test_without_javascript_the_page_says_adding_needs_it(browser, live_server, owner):
    context = browser.new_context(java_script_enabled=False, base_url=live_server.url)
    page = context.new_page()
    page.goto("/sign-in/")
    page.get_by_label("Username").fill("stripe-owner")
    page.get_by_label("Password").fill("demo")
    page.get_by_role("button", name="Sign in").click()
    for path, what in (
        ("/payment-methods/add/card/", "card"),
        ("/payment-methods/add/sepa/", "bank account"),
    ):
        page.goto(path)
        expect(page.get_by_text(f"Adding a {what} needs JavaScript")).to_be_visible()
        # Nothing to type a number into, nothing to submit.
        expect(page.locator("#stripe-setup")).to_be_hidden()
        expect(page.locator("#main input:visible:not([type=hidden])")).to_have_count(0)
    context.close()


@pytest.mark.parametrize("language", ["en", "ja"])
def test_the_stripe_add_pages_have_no_serious_violation(browser, live_server, owner, language, screenshots):
    user = Membership.objects.get(account=owner).user
    Profile.objects.create(user=user, language=language)
    context = browser.new_context(
        locale={"en": "en-US", "ja": "ja-JP"}[language],
        viewport={"width": 1280, "height": 900},
        base_url=live_server.url,
    )
    page = context.new_page()
    page.goto("/sign-in/")
    page.locator("#id_username").fill("stripe-owner")
    page.locator("#id_password").fill("demo")
    page.locator("form.form button[type=submit]").click()
    expect(page).to_have_url(re.compile("/$"))
    for kind in ("card", "sepa"):
        page.goto(f"/payment-methods/add/{kind}/")
        expect(page.locator("#stripe-setup button[type=submit]")).to_be_enabled()
        check(page, f"Stripe add {kind}", language)
        page.screenshot(path=screenshots / f"{language}-stripe-add-{kind}.png", full_page=True)
    # With Stripe's refusal on screen.
    page.goto("/payment-methods/add/card/")
    _fill_card(page, DECLINED_WHEN_SAVED)
    page.locator("#stripe-setup button[type=submit]").click()
    expect(page.locator("#stripe-error")).to_be_visible()
    check(page, "Stripe add card, declined", language)
    context.close()


def test_when_stripe_js_does_not_load_the_page_says_so(signed_in, localstripe):
    page = signed_in
    page.route(f"{localstripe}/js.stripe.com/**", lambda route: route.abort())
    page.goto("/payment-methods/add/card/")
    expect(page.locator("#stripe-error")).to_contain_text("Our payment processor cannot be reached")
    expect(page.get_by_role("button", name="Add card")).to_be_disabled()
