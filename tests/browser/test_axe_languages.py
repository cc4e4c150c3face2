"""axe-core on every console page, in English and in Japanese: no serious or critical violation.

Pages a signed-out visitor sees (sign-in, password reset, not found) and every page of a signed-in
owner, with a flash message and a form error on screen where a page can show one.
"""

import datetime
import re

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from playwright.sync_api import expect

from accounts.members import invitation_token
from accounts.models import Invitation, Membership, Profile
from invoices.models import Invoice
from invoices.refunds import invoice_refund
from invoices.settlement import invoice_pay_now
from payments.ratelimit import add_method_failure_record
from tests.factories import (
    AccountFactory,
    InvoiceFactory,
    MembershipFactory,
    PaymentAttemptFactory,
    UserFactory,
)
from tests.utils import GENERIC_DECLINE, SUCCEEDS, add_ach, add_card

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BLOCKING = ("serious", "critical")


@pytest.fixture
def owner():
    cache.clear()
    user = UserFactory(username="hanako", password="demo")
    account = AccountFactory(name="Acme Robotics")
    MembershipFactory(user=user, account=account, role=Membership.Role.OWNER)
    declines = add_card(account, GENERIC_DECLINE, exp_month=8, exp_year=2031)
    add_card(account, SUCCEEDS, exp_month=3, exp_year=2032)
    add_card(account, "5555555555554444", in_order=False)
    invoice = InvoiceFactory(account=account, number="INV-2026-0042", status=Invoice.Status.PAST_DUE)
    # A euro invoice the US bank account cannot pay (Pay now shows it disabled, with the reason),
    # and one whose bank debit is pending (no Pay now; the dashboard says what it waits for).
    bank = add_ach(account, in_order=False)
    InvoiceFactory(account=account, number="INV-2026-0043", currency="EUR")
    pending = InvoiceFactory(account=account, number="INV-2026-0044")
    PaymentAttemptFactory(
        invoice=pending, method=bank, position=None, status="pending", decline_code="", decline_class=""
    )
    # Paid (by the backup) and partly refunded: the invoice page shows its refunds.
    refunded = InvoiceFactory(account=account, number="INV-2026-0041", amount_minor=9_900)
    invoice_pay_now(invoice=refunded, actor=None)
    invoice_refund(invoice=refunded, amount_minor=1_900, actor=None)
    invoice.refunded = refunded
    return user, declines, invoice


def check(page, where, language):
    expect(page.locator("html")).to_have_attribute("lang", language)
    results = Axe().run(page)
    blocking = [v for v in results.response["violations"] if v.get("impact") in BLOCKING]
    found = [(v["id"], [node["html"][:160] for node in v["nodes"]]) for v in blocking]
    assert not blocking, (where, language, found)


@pytest.mark.parametrize("language", ["en", "ja"])
def test_every_page_has_no_serious_violation(browser, live_server, owner, language, screenshots):
    user, declines, invoice = owner
    Profile.objects.create(user=user, language=language)
    context = browser.new_context(
        locale={"en": "en-US", "ja": "ja-JP"}[language],
        viewport={"width": 1280, "height": 900},
        base_url=live_server.url,
    )
    page = context.new_page()
    # An invitation for a person with no user yet (choosing a password), and one already used.
    invited, used = (
        Invitation.objects.create(
            account=user.memberships.get().account,
            email=email,
            role=Membership.Role.BILLING,
            invited_by=user,
            expires_at=timezone.now() + datetime.timedelta(days=7),
            accepted_at=accepted_at,
        )
        for email, accepted_at in (("new@acme.example", None), ("old@acme.example", timezone.now()))
    )
    for path in (
        "/sign-in/",
        "/password-reset/",
        "/password-reset/sent/",
        "/no-such-page/",
        f"/invitations/{invitation_token(invited.pk)}/",
        f"/invitations/{invitation_token(used.pk)}/",
    ):
        page.goto(path)
        check(page, path, language)
    # On a tall screen and on a phone, where the language menu no longer sits on the dark band.
    for width, height in ((1280, 1600), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.goto("/sign-in/")
        check(page, f"/sign-in/ at {width}×{height}", language)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto("/sign-in/")
    page.locator("#id_username").fill("hanako")
    page.locator("#id_password").fill("wrong")
    page.locator("form.form button[type=submit]").click()
    expect(page.locator(".form-errors")).to_be_visible()
    check(page, "sign-in with an error", language)
    page.locator("#id_password").fill("demo")
    page.locator("form.form button[type=submit]").click()
    expect(page).to_have_url(re.compile("/$"))

    pages = [
        "/",
        "/payment-methods/",
        "/payment-methods/add/card/",
        "/payment-methods/add/sepa/",
        "/payment-methods/add/bank/",
        f"/payment-methods/{declines.pk}/expiry/",
        f"/payment-methods/{declines.pk}/remove/",
        f"/payment-methods/{declines.pk}/leave-order/",
        f"/payment-methods/add/card/?replace={declines.pk}",
        "/invoices/",
        "/invoices/?status=past_due",
        f"/invoices/{invoice.pk}/",
        f"/invoices/{Invoice.objects.get(number='INV-2026-0043').pk}/",
        f"/invoices/{Invoice.objects.get(number='INV-2026-0044').pk}/",
        f"/invoices/{invoice.refunded.pk}/",
        f"/invoices/{invoice.pk}/authenticate/",
        "/activity/",
        "/settings/",
        "/settings/billing-contacts/",
        "/settings/members/",
    ]
    for path in pages:
        page.goto(path)
        check(page, path, language)
        name = re.sub(r"[^a-z0-9]+", "-", path).strip("-") or "dashboard"
        page.screenshot(path=screenshots / f"{language}-{name}.png", full_page=True)

    # A form error, a flash message and the open member menu.
    page.goto("/payment-methods/add/card/")
    page.locator("#id_number").fill("4242 4242 4242 4241")
    page.locator("form.form button[type=submit]").click()
    expect(page.locator("#id_number_error")).to_be_visible()
    check(page, "add card with an error", language)
    page.goto("/payment-methods/")
    page.locator(f"#method-{declines.pk} button[value=move_down]").click()
    expect(page.locator(".flash--success")).to_be_visible()
    page.locator(".member-menu summary").click()
    check(page, "flash message and member menu", language)

    # A bank account that cannot pay the account's currency asks first.
    page.goto("/payment-methods/add/sepa/")
    page.locator("#id_account_holder").fill("Hanako Yamada")
    page.locator("#id_iban").fill("DE89 3704 0044 0532 0130 00")
    page.locator("#id_mandate").check()
    page.locator("form.form button[type=submit]").click()
    expect(page).to_have_url(re.compile("/payment-methods/add/sepa/confirm/$"))
    check(page, "confirm a method in another currency", language)
    page.screenshot(path=screenshots / f"{language}-add-sepa-confirm.png", full_page=True)

    # The card-testing pause, with how long it lasts.
    for _ in range(settings.BILLING_ADD_METHOD_FAILURES_PER_HOUR):
        add_method_failure_record(account_id=invoice.account_id)
    page.goto("/payment-methods/add/card/")
    expect(page.locator("h1")).to_be_visible()
    check(page, "adding methods paused", language)
    page.screenshot(path=screenshots / f"{language}-add-paused.png", full_page=True)
    page.goto("/payment-methods/")
    check(page, "payment methods while adding is paused", language)
    cache.clear()

    # Phones: nothing scrolls sideways, the language menu included.
    page.set_viewport_size({"width": 390, "height": 844})
    for path in (
        "/",
        "/payment-methods/",
        "/invoices/",
        f"/invoices/{invoice.pk}/",
        "/settings/",
        "/settings/billing-contacts/",
        "/settings/members/",
    ):
        page.goto(path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path} in {language} scrolls sideways on a phone ({width}px)"
        check(page, f"{path} on a phone", language)
    page.screenshot(path=screenshots / f"{language}-phone-settings.png", full_page=True)
    context.close()
