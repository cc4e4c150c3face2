"""Adding and ranking methods in a real browser, read as a customer reads the page: the card-testing
pause, Remove from charge order, Replace this card, duplicates and a bank account in another currency."""

import re

import pytest
from django.core.cache import cache
from playwright.sync_api import expect

from accounts.models import Membership
from invoices.models import Invoice
from payments.models import PaymentMethod
from payments.services import charge_order_ids
from tests.factories import AccountFactory, InvoiceFactory, MembershipFactory, UserFactory
from tests.utils import LOST_CARD, SUCCEEDS, add_card

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def account():
    cache.clear()
    user = UserFactory(username="kim", password="demo")
    account = AccountFactory(name="Initech", currency="USD")
    MembershipFactory(user=user, account=account, role=Membership.Role.OWNER)
    return account


@pytest.fixture(params=["js", "nojs"])
def mode(request):
    return request.param


def sign_in(browser, live_server, *, javascript=True):
    context = browser.new_context(
        java_script_enabled=javascript, viewport={"width": 1280, "height": 900}, base_url=live_server.url
    )
    page = context.new_page()
    page.goto("/sign-in/")
    page.get_by_label("Username").fill("kim")
    page.get_by_label("Password").fill("demo")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_title(re.compile("^Dashboard"))
    return page


def fill_card(page, number, expiry="11/31", cvc="123"):
    page.get_by_label("Card number").fill(number)
    page.get_by_label("Expiry (MM/YY)").fill(expiry)
    page.get_by_label("Security code (CVC)").fill(cvc)
    page.get_by_role("button", name="Add card").click()


def test_typing_mistakes_stay_field_errors_and_only_refusals_pause_adding(browser, live_server, account):
    page = sign_in(browser, live_server)
    page.goto("/payment-methods/add/card/")
    page.get_by_role("button", name="Add card").click()  # an empty form
    expect(page.locator("#id_number_error")).to_contain_text("This field is required")
    for typo in ("4242 4242 4242 4241", "4242 4242 4242 4243"):  # two typos failing the Luhn check
        fill_card(page, typo)
        expect(page.locator("#id_number_error")).to_contain_text("This card number is not valid")
    fill_card(page, "4242 4242 4242 4242", expiry="01/20")  # an expired date
    expect(page.locator("#id_expiry_error")).to_contain_text("This card has expired")
    page.goto("/payment-methods/add/bank/")  # an unticked mandate box, the fifth mistake
    page.get_by_label("Account holder").fill("Kim Lee")
    page.get_by_label("Routing number").fill("110000000")
    page.get_by_label("Account number").fill("000123456789")
    page.get_by_role("button", name="Add bank account").click()
    expect(page.locator("#id_mandate_error")).to_be_visible()
    page.goto("/payment-methods/add/card/")
    fill_card(page, "4242 4242 4242 4241")  # the sixth: still a field error, never a block page
    expect(page.locator("#id_number_error")).to_contain_text("This card number is not valid")

    # Numbers the gateway refuses are what card testing looks like: five pause adding, and say how long.
    for _ in range(5):
        fill_card(page, "4539 1488 0343 6467")
    expect(page.get_by_role("heading", name="Try again later")).to_be_visible()
    expect(page.get_by_text("You can add a payment method again in 60 minutes.")).to_be_visible()
    page.goto("/payment-methods/")
    expect(page.get_by_text("You can add a payment method again in 60 minutes.")).to_be_visible()
    assert not PaymentMethod.objects.filter(account=account).exists()
    page.context.close()


def test_the_primary_leaves_the_charge_order_only_after_saying_who_takes_over(
    browser, live_server, account, mode
):
    primary = add_card(account, SUCCEEDS)
    backup = add_card(account, "5555555555554444")
    page = sign_in(browser, live_server, javascript=mode == "js")
    page.goto("/payment-methods/")
    primary_card = page.locator(f"#method-{primary.pk}")
    expect(primary_card.get_by_role("button", name="Remove from backups")).to_have_count(0)
    primary_card.get_by_role("button", name="Remove from charge order").click()
    expect(page).to_have_title(re.compile(r"^Remove Visa •••• 4242 from the charge order\?"))
    expect(page.get_by_text("Mastercard •••• 4444 becomes your primary")).to_be_visible()
    assert charge_order_ids(account=account) == [primary.pk, backup.pk]
    page.get_by_role("button", name="Remove from charge order").click()
    expect(
        page.get_by_text("Visa •••• 4242 is no longer in the charge order; it stays on file.")
    ).to_be_visible()
    expect(page.locator("#charge-order [data-rank-label]")).to_have_text(["Primary"])
    assert charge_order_ids(account=account) == [backup.pk]

    # The last one left: the page says nothing will be left to charge.
    page.locator(f"#method-{backup.pk}").get_by_role("button", name="Remove from charge order").click()
    expect(page.get_by_text("no method will be left to charge")).to_be_visible()
    page.context.close()


def test_a_card_reported_lost_is_replaced_in_its_place(browser, live_server, account):
    lost = add_card(account, LOST_CARD)
    backup = add_card(account, SUCCEEDS)
    InvoiceFactory(account=account, number="INV-7", status=Invoice.Status.PAST_DUE)
    page = sign_in(browser, live_server)
    # A hard decline, as a customer meets one: Pay now, the primary reported lost, the backup pays.
    page.goto("/invoices/")
    page.get_by_role("link", name="INV-7", exact=True).click()
    page.get_by_role("button", name=re.compile("^Pay now")).click()
    expect(page.locator("h1 .badge")).to_have_text(re.compile("Paid"))

    page.goto("/payment-methods/")
    lost_card = page.locator(f"#method-{lost.pk}")
    expect(lost_card).to_contain_text(
        "Declined: the card was reported lost. It will not be charged again; replace it with a new one."
    )
    expect(lost_card.get_by_role("link", name="Update expiry")).to_have_count(0)
    lost_card.get_by_role("link", name="Replace this card").click()
    expect(page.get_by_role("heading", name="Replace Visa •••• 9987")).to_be_visible()
    expect(
        page.get_by_text("The new method takes the place of Visa •••• 9987 as your Primary.")
    ).to_be_visible()
    fill_card(page, "5555 5555 5555 4444")
    expect(
        page.get_by_text("Mastercard •••• 4444 took the place of Visa •••• 9987 as Primary.")
    ).to_be_visible()
    new = PaymentMethod.objects.get(account=account, last4="4444")
    assert charge_order_ids(account=account) == [new.pk, backup.pk]
    expect(page.locator("#charge-order .method-face__title")).to_have_text(
        ["Mastercard •••• 4444", "Visa •••• 4242"]
    )
    expect(page.locator(".onfile-list")).to_contain_text("Visa •••• 9987")
    page.context.close()


def test_a_duplicate_is_refused_and_another_currency_asks_first(browser, live_server, account):
    page = sign_in(browser, live_server)

    def add_us_bank_account():
        page.goto("/payment-methods/add/bank/")
        page.get_by_label("Account holder").fill("Kim Lee")
        page.get_by_label("Routing number").fill("110000000")
        page.get_by_label("Account number").fill("000123456789")
        page.get_by_label("I authorise the collection").check()
        page.get_by_role("button", name="Add bank account").click()

    add_us_bank_account()
    expect(page.get_by_text("Sandbox Bank •••• 6789 is now Primary.")).to_be_visible()
    add_us_bank_account()
    expect(page.locator(".form-errors")).to_have_text(
        "This bank account is already on file as Sandbox Bank •••• 6789 (Primary)."
    )
    assert PaymentMethod.objects.filter(account=account).count() == 1

    page.goto("/payment-methods/add/sepa/")
    page.get_by_label("Account holder").fill("Kim Lee")
    page.get_by_label("IBAN").fill("DE89 3704 0044 0532 0130 00")
    page.get_by_label("I authorise the collection").check()
    page.get_by_role("button", name="Add bank account").click()
    expect(page.get_by_role("heading", name="Add a method that cannot pay USD invoices?")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("Sandbox Bank •••• 3000 cannot pay USD invoices")
    expect(page.locator(".flash--success")).to_have_count(0)
    assert PaymentMethod.objects.filter(account=account).count() == 1
    page.get_by_role("button", name="Don't add it").click()
    expect(page.get_by_text("Sandbox Bank •••• 3000 was not added.")).to_be_visible()
    assert PaymentMethod.objects.filter(account=account).count() == 1
    page.context.close()
