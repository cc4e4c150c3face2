"""The console in a real browser, with JavaScript and without: every flow a customer uses."""

import re

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.core.cache import cache
from playwright.sync_api import expect

from accounts.models import Membership
from invoices.models import Invoice
from payments.models import PaymentMethod
from payments.services import charge_order_ids
from tests.factories import AccountFactory, InvoiceFactory, MembershipFactory, UserFactory
from tests.utils import GENERIC_DECLINE, SUCCEEDS, add_card

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo():
    """An owner like the demo's: a primary that declines, a backup that pays, a past-due invoice."""
    cache.clear()
    user = UserFactory(username="demo", password="demo", first_name="Dana", last_name="Demo")
    account = AccountFactory(name="Acme Robotics", billing_email="billing@acme.example")
    MembershipFactory(user=user, account=account, role=Membership.Role.OWNER)
    primary = add_card(account, GENERIC_DECLINE, exp_month=8, exp_year=2031)
    backup = add_card(account, SUCCEEDS, exp_month=3, exp_year=2032)
    invoice = InvoiceFactory(
        account=account,
        number="INV-2026-0042",
        status=Invoice.Status.PAST_DUE,
        description="Cloud usage, October",
    )
    InvoiceFactory(account=account, number="INV-2026-0041", amount_minor=9_870)
    return account, primary, backup, invoice


@pytest.fixture(params=["js", "nojs"])
def mode(request):
    return request.param


@pytest.fixture
def console(browser, live_server, mode, demo):
    """A signed-in page, with JavaScript on or off; fails the test on any CSP violation or JS error."""
    context = browser.new_context(
        java_script_enabled=mode == "js", viewport={"width": 1280, "height": 900}, base_url=live_server.url
    )
    page = context.new_page()
    problems = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto("/sign-in/")
    page.get_by_label("Username").fill("demo")
    page.get_by_label("Password").fill("demo")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_title(re.compile("^Dashboard"))
    page.problems = problems
    page.mode = mode
    yield page
    context.close()
    assert not [p for p in problems if "favicon" not in p], problems


def shot(page, screenshots, name):
    page.screenshot(path=screenshots / f"{name}-{page.mode}.png", full_page=True)


def ranks(page):
    return page.locator("#charge-order > li").evaluate_all(
        "items => items.map(li => [li.querySelector('[data-rank-label]').textContent.trim(),"
        " li.querySelector('.method-face__title').textContent.replace(/\\s+/g, ' ').trim()])"
    )


def card(page, method):
    return page.locator(f"#method-{method.pk}")


def test_add_a_backup_card(console, demo, screenshots):
    _account, _primary, _backup, _ = demo
    page = console
    shot(page, screenshots, "dashboard")
    page.get_by_role("navigation", name="Console").get_by_role("link", name="Payment methods").click()
    expect(page).to_have_title(re.compile("^Payment methods"))
    page.get_by_role("link", name="+ Add a payment method").click()
    expect(page.get_by_role("heading", name="Add a card")).to_be_visible()
    # A typo is explained next to the field, and the number is not echoed back.
    page.get_by_label("Card number").fill("4242 4242 4242 4241")
    page.get_by_label("Expiry (MM/YY)").fill("11/31")
    page.get_by_label("Security code (CVC)").fill("123")
    page.get_by_role("button", name="Add card").click()
    expect(page.locator("#id_number_error")).to_contain_text("This card number is not valid")
    expect(page.get_by_label("Card number")).to_have_value("")
    shot(page, screenshots, "add-card-error")
    page.get_by_label("Card number").fill("5555 5555 5555 4444")
    page.get_by_label("Security code (CVC)").fill("123")
    page.get_by_role("button", name="Add card").click()
    expect(page.get_by_text("Mastercard •••• 4444 is now Backup 2.")).to_be_visible()
    assert [r[0] for r in ranks(page)] == ["Primary", "Backup 1", "Backup 2"]
    assert ranks(page)[2][1] == "Mastercard •••• 4444"
    shot(page, screenshots, "payment-methods")


def test_reorder_by_keyboard_alone(console, demo):
    account, primary, backup, _ = demo
    page = console
    page.goto("/payment-methods/")
    target = card(page, backup).get_by_role("button", name="Move up", exact=True)
    page.locator("body").focus()
    for _ in range(80):
        page.keyboard.press("Tab")
        if target.evaluate("el => el === document.activeElement"):
            break
    else:
        pytest.fail("Tab never reached Move up")
    page.keyboard.press("Enter")
    expect(page.get_by_text("Visa •••• 4242 is now Primary.")).to_be_visible()
    page.reload()
    assert ranks(page) == [["Primary", "Visa •••• 4242"], ["Backup 1", "Visa •••• 0002"]]
    assert charge_order_ids(account=account) == [backup.pk, primary.pk]


def test_reorder_by_drag_and_drop(console, demo, screenshots):
    account, primary, backup, _ = demo
    if console.mode == "nojs":
        # Without JavaScript nothing pretends to be draggable; every card offers the buttons instead.
        console.goto("/payment-methods/")
        expect(console.locator("[draggable='true']")).to_have_count(0)
        expect(card(console, backup).get_by_role("button", name="Move up", exact=True)).to_be_visible()
        return
    third = add_card(account, "4000000000009995", exp_month=1, exp_year=2033)
    page = console
    page.goto("/payment-methods/")
    source = card(page, third).locator(".order-card__rank")
    target = card(page, primary).locator(".order-card__rank")
    box_from, box_to = source.bounding_box(), target.bounding_box()
    page.mouse.move(box_from["x"] + 10, box_from["y"] + 10)
    page.mouse.down()
    page.mouse.move(box_from["x"] + 14, box_from["y"] + 4, steps=4)
    page.mouse.move(box_to["x"] + 10, box_to["y"] + 2, steps=20)
    page.mouse.move(box_to["x"] + 10, box_to["y"] - 4, steps=4)
    page.mouse.up()
    status = page.locator("#order-status")
    expect(status).to_contain_text("Charge order saved. Primary: Visa •••• 9995")
    assert status.get_attribute("aria-live") == "polite"
    # Relabelled at once, without a reload …
    assert [r[0] for r in ranks(page)] == ["Primary", "Backup 1", "Backup 2"]
    assert ranks(page)[0][1] == "Visa •••• 9995"
    expect(card(page, third).get_by_role("button", name="Move up", exact=True)).to_be_disabled()
    # … and saved.
    assert charge_order_ids(account=account) == [third.pk, primary.pk, backup.pk]
    page.reload()
    assert [r[1] for r in ranks(page)] == ["Visa •••• 9995", "Visa •••• 0002", "Visa •••• 4242"]
    shot(page, screenshots, "after-drag")


def test_reorder_by_touch(browser, live_server, demo, screenshots):
    account, primary, backup, _ = demo
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True
    )
    page = context.new_page()
    page.goto("/sign-in/")
    page.get_by_label("Username").fill("demo")
    page.get_by_label("Password").fill("demo")
    page.get_by_role("button", name="Sign in").click()
    page.goto("/payment-methods/")
    cdp = context.new_cdp_session(page)
    start = card(page, backup).locator(".order-card__rank").bounding_box()
    end = card(page, primary).locator(".order-card__rank").bounding_box()

    def touch(kind, x, y):
        points = [] if kind == "touchEnd" else [{"x": x, "y": y}]
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

    x, y = start["x"] + 8, start["y"] + 8
    touch("touchStart", x, y)
    page.wait_for_timeout(400)  # a press-and-hold starts the drag on touch screens, so swipes still scroll
    for step in range(1, 21):
        touch("touchMove", x, y + (end["y"] - 6 - y) * step / 20)
        page.wait_for_timeout(15)
    touch("touchEnd", 0, 0)
    expect(page.locator("#order-status")).to_contain_text("Charge order saved. Primary: Visa •••• 4242")
    assert charge_order_ids(account=account) == [backup.pk, primary.pk]
    page.screenshot(path=screenshots / "payment-methods-phone.png", full_page=True)
    context.close()


def test_make_primary(console, demo):
    account, primary, backup, _ = demo
    page = console
    page.goto("/payment-methods/")
    card(page, backup).get_by_role("button", name="Make primary", exact=True).click()
    expect(page.get_by_text("Visa •••• 4242 is now Primary.")).to_be_visible()
    assert ranks(page)[0] == ["Primary", "Visa •••• 4242"]
    assert charge_order_ids(account=account) == [backup.pk, primary.pk]


def test_remove_with_confirmation(console, demo, screenshots):
    _account, primary, _backup, _ = demo
    page = console
    page.goto("/payment-methods/")
    card(page, primary).get_by_role("button", name="Remove", exact=True).click()
    expect(page).to_have_title(re.compile(r"^Remove Visa •••• 0002\?"))
    expect(page.get_by_text("becomes your primary")).to_be_visible()
    shot(page, screenshots, "remove-confirm")
    assert PaymentMethod.objects.get(pk=primary.pk).is_active
    page.get_by_role("button", name="Remove", exact=True).click()
    expect(page.get_by_text("Visa •••• 0002 was removed.")).to_be_visible()
    assert ranks(page) == [["Primary", "Visa •••• 4242"]]
    assert PaymentMethod.objects.get(pk=primary.pk).status == PaymentMethod.Status.REMOVED


def test_pay_now_is_paid_by_the_backup(console, demo, screenshots):
    _account, _primary, _backup, invoice = demo
    page = console
    page.get_by_role("navigation", name="Console").get_by_role("link", name="Invoices").click()
    shot(page, screenshots, "invoices")
    page.get_by_role("link", name="Past due").click()
    expect(page.get_by_role("link", name="INV-2026-0041", exact=True)).to_have_count(0)
    page.get_by_role("link", name="INV-2026-0042", exact=True).click()
    expect(page).to_have_title(re.compile("^Invoice INV-2026-0042"))
    expect(page.get_by_text("What the next run will do")).to_be_visible()
    shot(page, screenshots, "invoice-past-due")
    page.get_by_role("button", name=re.compile("^Pay now")).click()
    expect(page.locator("h1 .badge")).to_have_text(re.compile("Paid"))
    timeline = page.locator(".timeline")
    expect(timeline).to_contain_text("Visa •••• 0002 was declined: generic decline — we tried Backup 1 next.")
    expect(timeline).to_contain_text("Visa •••• 4242 (Backup 1) was charged $125.00.")
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID and invoice.paid_by_backup
    shot(page, screenshots, "invoice-paid")


def test_every_page_looks_finished(console, demo, screenshots):
    page = console
    for path, name, title in [
        ("/", "dashboard", "Dashboard"),
        ("/payment-methods/", "payment-methods", "Payment methods"),
        ("/payment-methods/add/card/", "add-card", "Add a card"),
        ("/payment-methods/add/sepa/", "add-sepa", "Add a SEPA bank account"),
        ("/payment-methods/add/bank/", "add-bank", "Add a US bank account"),
        ("/invoices/", "invoices", "Invoices"),
        ("/activity/", "activity", "Activity"),
        ("/settings/", "settings", "Settings"),
    ]:
        page.goto(path)
        expect(page).to_have_title(re.compile(f"^{re.escape(title)} · Acme Robotics · Billing console$"))
        shot(page, screenshots, f"page-{name}")
        if page.mode == "js":  # axe-core runs as a script in the page
            results = Axe().run(page)
            assert results.violations_count == 0, (path, results.generate_report())
    page.set_viewport_size({"width": 390, "height": 844})
    for path, name in [
        ("/", "dashboard"),
        ("/payment-methods/", "payment-methods"),
        ("/invoices/", "invoices"),
    ]:
        page.goto(path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path} scrolls sideways on a phone ({width}px)"
        shot(page, screenshots, f"phone-{name}")
    page.context.clear_cookies()
    page.goto("/sign-in/")
    shot(page, screenshots, "sign-in")
