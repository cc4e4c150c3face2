"""The console in Japanese in a real browser, with JavaScript and without: switch to 日本語 on the
sign-in page, sign in, read the dashboard, reorder the charge order by keyboard (and by drag and drop),
pay an invoice and read its timeline, then switch back to English."""

import re

import pytest
from django.core.cache import cache
from playwright.sync_api import expect

from accounts.models import Membership, Profile
from invoices.models import Invoice
from payments.services import charge_order_ids
from tests.factories import AccountFactory, InvoiceFactory, MembershipFactory, UserFactory
from tests.utils import GENERIC_DECLINE, SUCCEEDS, add_card

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo():
    """An owner with a primary that declines, a backup that pays, and a past-due invoice."""
    cache.clear()
    user = UserFactory(username="hanako", password="demo", first_name="Hanako", last_name="Sato")
    account = AccountFactory(name="Acme Robotics", billing_email="billing@acme.example")
    MembershipFactory(user=user, account=account, role=Membership.Role.OWNER)
    declines = add_card(account, GENERIC_DECLINE, exp_month=8, exp_year=2031)
    pays = add_card(account, SUCCEEDS, exp_month=3, exp_year=2032)
    invoice = InvoiceFactory(
        account=account, number="INV-2026-0042", status=Invoice.Status.PAST_DUE, description="Cloud usage"
    )
    return user, account, declines, pays, invoice


@pytest.fixture(params=["js", "nojs"])
def page(request, browser, live_server):
    """An English-speaking browser; fails the test on any CSP violation or script error."""
    context = browser.new_context(
        java_script_enabled=request.param == "js",
        locale="en-US",
        viewport={"width": 1280, "height": 900},
        base_url=live_server.url,
    )
    page = context.new_page()
    problems = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.mode = request.param
    yield page
    context.close()
    assert not [p for p in problems if "favicon" not in p], problems


def ranks(page):
    return page.locator("#charge-order > li").evaluate_all(
        "items => items.map(li => [li.querySelector('[data-rank-label]').textContent.trim(),"
        " li.querySelector('.method-face__title').textContent.replace(/\\s+/g, ' ').trim()])"
    )


def language_menu(page):
    return page.get_by_role("group", name=re.compile("^(Language|言語)$"))


def tab_to(page, target, limit=120):
    """Press Tab until ``target`` has the focus, as a keyboard user would."""
    page.locator("body").focus()
    for _ in range(limit):
        page.keyboard.press("Tab")
        if target.evaluate("el => el === document.activeElement"):
            return
    pytest.fail("Tab never reached the control")


def test_the_console_in_japanese_and_back(page, demo, screenshots):
    user, account, declines, pays, invoice = demo

    # Signed out, in the browser's English; the menu offers 日本語.
    page.goto("/sign-in/")
    expect(page).to_have_title("Sign in · Billing console")
    language_menu(page).get_by_role("button", name="日本語").click()
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    # The confirmation leads the title, which a screen reader reads as the page opens.
    expect(page).to_have_title("表示言語を日本語に切り替えました。 · ログイン · 請求管理コンソール")
    expect(page.get_by_text("表示言語を日本語に切り替えました。")).to_be_visible()
    expect(language_menu(page).get_by_role("button", name="日本語")).to_have_attribute("aria-current", "true")
    page.screenshot(path=screenshots / f"ja-sign-in-{page.mode}.png", full_page=True)

    # Sign-in, with the form's own errors in Japanese first.
    page.get_by_label("ユーザー名").fill("hanako")
    page.get_by_label("パスワード").fill("wrong")
    page.get_by_role("button", name="ログイン", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text(
        "ユーザー名とパスワードの組み合わせが正しくありません。"
    )
    page.get_by_label("パスワード").fill("demo")
    page.get_by_role("button", name="ログイン", exact=True).click()

    # The dashboard.
    expect(page).to_have_title("ダッシュボード · Acme Robotics · 請求管理コンソール")
    expect(page.get_by_role("heading", name="主なお支払い方法")).to_be_visible()
    expect(page.locator(".alerts")).to_contain_text("請求書 INV-2026-0042（$125.00）は")
    expect(page.locator(".alerts")).to_contain_text("支払期限を過ぎています。")
    expect(page.locator(".sidenav__account")).to_contain_text("有効")
    page.screenshot(path=screenshots / f"ja-dashboard-{page.mode}.png", full_page=True)

    # Reordering by keyboard alone: Tab to 上へ移動 on the backup, press Enter.
    page.get_by_role("navigation", name="コンソール").get_by_role("link", name="お支払い方法").click()
    expect(page).to_have_title(re.compile("^お支払い方法 · "))
    assert ranks(page) == [["メイン", "Visa •••• 0002"], ["予備 1", "Visa •••• 4242"]]
    move_up = page.locator(f"#method-{pays.pk}").get_by_role("button", name="上へ移動", exact=True)
    tab_to(page, move_up)
    outline = move_up.evaluate(
        "el => getComputedStyle(el).outlineStyle + ' ' + getComputedStyle(el).outlineWidth"
    )
    assert outline.startswith("solid") and not outline.endswith(" 0px"), f"focus is not visible: {outline}"
    page.keyboard.press("Enter")
    expect(page.get_by_text("Visa •••• 4242 をメインにしました。")).to_be_visible()
    assert ranks(page) == [["メイン", "Visa •••• 4242"], ["予備 1", "Visa •••• 0002"]]
    assert charge_order_ids(account=account) == [pays.pk, declines.pk]
    # The message sits in a polite live region; with JavaScript, focus stays on the moved card.
    assert page.locator(".flash-stack").get_attribute("role") == "status"
    if page.mode == "js":
        expect(page.locator(f"#method-{pays.pk} button:focus")).to_have_count(1)
    page.screenshot(path=screenshots / f"ja-payment-methods-{page.mode}.png", full_page=True)

    # …and back to the declining card first, by drag and drop (announced) or the メインにする button.
    if page.mode == "js":
        source = page.locator(f"#method-{declines.pk} .order-card__rank")
        target = page.locator(f"#method-{pays.pk} .order-card__rank")
        box_from, box_to = source.bounding_box(), target.bounding_box()
        page.mouse.move(box_from["x"] + 10, box_from["y"] + 10)
        page.mouse.down()
        page.mouse.move(box_from["x"] + 14, box_from["y"] + 4, steps=4)
        page.mouse.move(box_to["x"] + 10, box_to["y"] + 2, steps=20)
        page.mouse.move(box_to["x"] + 10, box_to["y"] - 4, steps=4)
        page.mouse.up()
        status = page.locator("#order-status")
        expect(status).to_have_text(
            "お支払いの優先順位を保存しました。メイン: Visa •••• 0002; 予備 1: Visa •••• 4242。"
        )
        assert status.get_attribute("aria-live") == "polite"
        assert [r[0] for r in ranks(page)] == ["メイン", "予備 1"]
    else:
        page.locator(f"#method-{declines.pk}").get_by_role("button", name="メインにする", exact=True).click()
        expect(page.get_by_text("Visa •••• 0002 をメインにしました。")).to_be_visible()
    assert charge_order_ids(account=account) == [declines.pk, pays.pk]

    # An invoice: what the next run will do, Pay now, and the timeline in plain Japanese.
    page.get_by_role("navigation", name="コンソール").get_by_role("link", name="請求書").click()
    expect(page).to_have_title(re.compile("^請求書 · "))
    page.get_by_role("link", name="支払期限超過").click()
    page.get_by_role("link", name="INV-2026-0042", exact=True).click()
    expect(page).to_have_title(re.compile("^請求書 INV-2026-0042 · "))
    expect(page.get_by_role("heading", name="次回の支払い処理の予定")).to_be_visible()
    page.get_by_role("button", name="$125.00 を今すぐ支払う").click()
    expect(page.locator("h1 .badge")).to_have_text(re.compile("支払い済み"))
    timeline = page.locator(".timeline")
    expect(timeline).to_contain_text(
        "Visa •••• 0002 の決済が承認されませんでした（カード会社・銀行による拒否）。"
        "次に予備 1で決済を試みました。"
    )
    expect(timeline).to_contain_text("Visa •••• 4242（予備 1）で $125.00 を決済しました。")
    expect(timeline).to_contain_text(f"{user.get_username()} さんが「今すぐ支払う」を実行")
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID and invoice.paid_by_backup
    page.screenshot(path=screenshots / f"ja-invoice-{page.mode}.png", full_page=True)

    # Back to English from the top bar, saved to the member's profile.
    language_menu(page).get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page).to_have_title(re.compile("^The console is now in English. · Invoice INV-2026-0042 · "))
    expect(page.get_by_text("The console is now in English.")).to_be_visible()
    expect(page.locator(".timeline")).to_contain_text("Visa •••• 4242 (Backup 1) was charged $125.00.")
    assert Profile.objects.get(user=user).language == "en"
    page.get_by_role("navigation", name="Console").get_by_role("link", name="Dashboard").click()
    expect(page).to_have_title(re.compile("^Dashboard · "))


def test_the_saved_language_wins_over_the_browsers(browser, live_server, demo):
    user, *_ = demo
    Profile.objects.create(user=user, language="ja")
    context = browser.new_context(locale="en-US", base_url=live_server.url)
    page = context.new_page()
    page.goto("/sign-in/")
    expect(page).to_have_title("Sign in · Billing console")
    page.get_by_label("Username").fill("hanako")
    page.get_by_label("Password").fill("demo")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_title(re.compile("^ダッシュボード · "))
    context.close()


def test_a_japanese_browser_gets_japanese_with_yen_without_decimals(browser, live_server, demo):
    user, *_ = demo
    yen = AccountFactory(name="株式会社サンプル", currency="JPY")
    MembershipFactory(user=user, account=yen, role=Membership.Role.OWNER)
    InvoiceFactory(account=yen, number="INV-JP-0001", amount_minor=1_250_000)
    context = browser.new_context(locale="ja-JP", base_url=live_server.url)
    page = context.new_page()
    page.goto("/sign-in/")
    expect(page).to_have_title("ログイン · 請求管理コンソール")
    page.get_by_label("ユーザー名").fill("hanako")
    page.get_by_label("パスワード").fill("demo")
    page.get_by_role("button", name="ログイン", exact=True).click()
    page.get_by_label("アカウント").select_option(label="株式会社サンプル — オーナー")
    expect(page.get_by_text("株式会社サンプル に切り替えました。")).to_be_visible()
    page.goto("/invoices/")
    row = page.get_by_role("row", name=re.compile("INV-JP-0001"))
    expect(row).to_contain_text("￥1,250,000")
    expect(row).not_to_contain_text("1,250,000.")
    context.close()
