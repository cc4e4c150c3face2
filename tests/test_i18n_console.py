"""The console speaks the member's language: saved preference, else the browser's; the language menu;
forms, messages, dates and money in that language; no unmarked words in the console's templates."""

import datetime
import re
from pathlib import Path

import pytest
import time_machine
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import translation

from accounts.models import Membership, Profile
from core.money import format_money
from invoices.models import Invoice
from tests.factories import (
    AccountFactory,
    AuditEventFactory,
    InvoiceFactory,
    MembershipFactory,
    PaymentAttemptFactory,
    ProfileFactory,
)
from tests.utils import GENERIC_DECLINE, SUCCEEDS, add_card

pytestmark = pytest.mark.django_db

COOKIE = settings.LANGUAGE_COOKIE_NAME
NOW = datetime.datetime(2026, 11, 20, 3, 0, tzinfo=datetime.UTC)


@pytest.fixture(autouse=True)
def _back_to_english():
    """A request in Japanese leaves the test thread in Japanese (the middleware activates the
    language for the request; in a server the next request activates its own): reset it, so that
    the tests after these ones, commands included, run in English again."""
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture
def owner(client):
    membership = MembershipFactory(
        role=Membership.Role.OWNER, account=AccountFactory(name="Acme", currency="JPY")
    )
    client.force_login(membership.user)
    return membership


def _lang(html: str) -> str:
    return re.search(r'<html lang="([^"]+)"', html).group(1)


def _get(client, path, **headers):
    response = client.get(path, headers=headers)
    assert response.status_code == 200, response.status_code
    return response.content.decode()


# Which language a page is in.


def test_the_browsers_language_when_the_member_chose_none(client, owner):
    html = _get(client, "/", accept_language="ja,en;q=0.5")
    assert _lang(html) == "ja"
    assert "<h1>ダッシュボード</h1>" in html
    assert _lang(_get(client, "/", accept_language="en-GB,en;q=0.8")) == "en"
    # A language the product does not speak falls back to English.
    assert _lang(_get(client, "/", accept_language="de-DE")) == "en"


def test_the_saved_preference_wins_over_the_browser(client, owner):
    ProfileFactory(user=owner.user, language="en")
    assert _lang(_get(client, "/", accept_language="ja")) == "en"
    Profile.objects.filter(user=owner.user).update(language="ja")
    html = _get(client, "/", accept_language="en")
    assert _lang(html) == "ja"
    assert "お支払いの優先順位" in html


def test_signed_out_pages_follow_the_browser(client):
    client.logout()
    html = _get(client, reverse("login"), accept_language="ja")
    assert _lang(html) == "ja"
    assert "<title>ログイン · 請求管理コンソール</title>" in html
    assert ">ユーザー名<" in html and ">パスワード<" in html


# The language menu.


def test_the_language_menu_is_a_plain_form_on_every_page(client, owner):
    html = _get(client, reverse("payment_methods"))
    form = re.search(r'<form class="lang-menu" method="post" action="/language/">.*?</form>', html, re.S)
    assert form, "the language menu is missing from the top bar"
    form = form.group(0)
    assert "csrfmiddlewaretoken" in form
    assert 'name="next" value="/payment-methods/"' in form
    assert 'value="ja" lang="ja"' in form and ">日本語</button>" in form
    assert 'value="en" lang="en"' in form and 'aria-current="true">English</button>' in form
    assert 'role="group" aria-label="Language"' in form
    client.logout()
    assert 'action="/language/"' in _get(client, reverse("login"))


def test_switching_saves_the_members_preference(client, owner):
    response = client.post(
        reverse("language"),
        {"language": "ja", "next": "/invoices/?status=paid"},
        headers={"accept-language": "en"},
    )
    assert response.status_code == 302
    assert response["Location"] == "/invoices/?status=paid"
    assert Profile.objects.get(user=owner.user).language == "ja"
    assert response.cookies[COOKIE].value == "ja"
    html = _get(client, "/invoices/", accept_language="en")
    assert _lang(html) == "ja"
    assert "表示言語を日本語に切り替えました。" in html
    assert 'aria-current="true">日本語</button>' in html
    # …and back, keeping the time zone chosen in Settings.
    Profile.objects.filter(user=owner.user).update(time_zone="Asia/Tokyo")
    client.post(reverse("language"), {"language": "en", "next": "/"})
    profile = Profile.objects.get(user=owner.user)
    assert (profile.language, profile.time_zone) == ("en", "Asia/Tokyo")
    assert "The console is now in English." in _get(client, "/", accept_language="ja")


def test_switching_when_signed_out_keeps_the_choice_in_a_cookie(client):
    response = client.post(reverse("language"), {"language": "ja", "next": reverse("login")})
    assert response.status_code == 302 and response["Location"] == reverse("login")
    assert response.cookies[COOKIE].value == "ja"
    assert _lang(_get(client, reverse("login"), accept_language="en")) == "ja"
    assert not Profile.objects.exists()


def test_switching_refuses_unknown_languages_and_foreign_redirects(client, owner):
    assert client.post(reverse("language"), {"language": "de"}).status_code == 400
    assert client.get(reverse("language")).status_code == 405
    response = client.post(reverse("language"), {"language": "ja", "next": "https://evil.example/"})
    assert response["Location"] == reverse("dashboard")
    client.logout()
    response = client.post(reverse("language"), {"language": "ja", "next": "//evil.example/"})
    assert response["Location"] == reverse("login")


def test_switching_needs_the_csrf_token(owner):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner.user)
    assert client.post(reverse("language"), {"language": "ja"}).status_code == 403
    assert not Profile.objects.filter(user=owner.user, language="ja").exists()


def test_settings_show_the_language_chosen_in_the_menu(client, owner):
    client.post(reverse("language"), {"language": "ja", "next": "/"})
    html = _get(client, reverse("settings"))
    assert re.search(r'<option value="ja" selected>日本語</option>', html)
    # Saving another setting keeps the language.
    client.post(reverse("settings"), {"language": "ja", "time_zone": "Asia/Tokyo"})
    profile = Profile.objects.get(user=owner.user)
    assert (profile.language, profile.time_zone) == ("ja", "Asia/Tokyo")


def test_same_as_my_browser_in_settings_forgets_the_cookie(client, owner):
    client.post(reverse("language"), {"language": "ja", "next": "/"})
    response = client.post(reverse("settings"), {"language": "", "time_zone": ""})
    assert response.status_code == 302
    assert response.cookies[COOKIE].value == ""  # deleted
    assert Profile.objects.get(user=owner.user).language == ""
    assert _lang(_get(client, "/", accept_language="en")) == "en"


# What a Japanese member reads.


@pytest.fixture
def japanese(client, owner):
    ProfileFactory(user=owner.user, language="ja")
    return owner


@time_machine.travel(NOW, tick=False)
def test_dashboard_in_japanese_with_yen_without_decimals(client, japanese):
    account = japanese.account
    add_card(account, GENERIC_DECLINE)
    InvoiceFactory(
        account=account,
        number="INV-JP-1",
        amount_minor=1_250_000,
        status=Invoice.Status.PAST_DUE,
        issued_on=datetime.date(2026, 10, 1),
        due_on=datetime.date(2026, 11, 1),
    )
    AuditEventFactory(account=account, actor_label="settlement")
    html = _get(client, "/")
    assert "￥1,250,000" in html and "1,250,000.00" not in html and "12,500.00" not in html
    assert "請求書 INV-JP-1（￥1,250,000）は 2026年11月1日 から支払期限を過ぎています。" in html
    assert "予備のお支払い方法が設定されていません" in html
    assert "主なお支払い方法" in html
    assert "実行者：自動支払い処理" in html
    assert "支払期限超過" in html


@time_machine.travel(NOW, tick=False)
def test_invoice_timeline_in_japanese(client, japanese):
    account = japanese.account
    declined = add_card(account, GENERIC_DECLINE)
    backup = add_card(account, SUCCEEDS)
    invoice = InvoiceFactory(account=account, number="INV-JP-2", amount_minor=9_800)
    PaymentAttemptFactory(invoice=invoice, method=declined, position=1, sequence=1)
    PaymentAttemptFactory(
        invoice=invoice, method=backup, position=2, sequence=2, status="succeeded", decline_code=""
    )
    html = _get(client, reverse("invoice_detail", args=[invoice.pk]))
    assert "<title>請求書 INV-JP-2 · Acme · 請求管理コンソール</title>" in html
    assert (
        "Visa •••• 0002 の決済が承認されませんでした（カード会社・銀行による拒否）。"
        "次に予備 1で決済を試みました。" in html
    )
    assert "Visa •••• 4242（予備 1）で ￥9,800 を決済しました。" in html
    assert "定期の支払い処理" in html
    assert "2026年11月" in html  # dates in the Japanese format


@time_machine.travel(NOW, tick=False)
def test_amounts_follow_the_currency_and_the_language():
    for language, yen, dollars in (("en", "¥1,250,000", "$125.00"), ("ja", "￥1,250,000", "$125.00")):
        with translation.override(language):
            assert format_money(1_250_000, "JPY") == yen
            assert format_money(12_500, "USD") == dollars
    assert format_money(12_500, "KWD", "ja").endswith("12.500")


def test_charge_order_buttons_and_messages_in_japanese(client, japanese):
    account = japanese.account
    primary = add_card(account, GENERIC_DECLINE)
    backup = add_card(account, SUCCEEDS)
    html = _get(client, reverse("payment_methods"))
    for words in ("上へ移動", "下へ移動", "メインにする", "予備から外す", ">メイン<", ">予備 1<"):
        assert words in html, words
    assert 'data-error-text="新しい優先順位を保存できませんでした。何も変更されていません。"' in html
    response = client.post(
        reverse("charge_order_action", args=[backup.pk]), {"action": "make_primary"}, follow=True
    )
    assert "Visa •••• 4242 をメインにしました。" in response.content.decode()
    # The drag-and-drop endpoint announces the new order in the member's language.
    response = client.post(
        reverse("charge_order_set"), {"order": [primary.pk, backup.pk]}, content_type="application/json"
    )
    assert response.json()["message"] == (
        "お支払いの優先順位を保存しました。メイン: Visa •••• 0002; 予備 1: Visa •••• 4242。"
    )
    response = client.post(reverse("charge_order_set"), {"order": "x"}, content_type="application/json")
    assert response.json()["errors"] == ["新しい優先順位は、お支払い方法の ID のリストで送信してください。"]


def test_form_errors_in_japanese(client, japanese):
    response = client.post(
        reverse("payment_method_add", args=["card"]),
        {"number": "4242 4242 4242 4241", "expiry": "1/2", "cvc": "1"},
    )
    html = response.content.decode()
    assert "このカード番号は正しくありません。入力に誤りがないかご確認ください。" in html
    assert "有効期限は MM/YY の形式で入力してください（例：08/29）。" in html
    assert "エラーのある項目を修正してください。" in html
    assert "カード番号" in html and "セキュリティコード（CVC）" in html
    response = client.post(reverse("payment_method_add", args=["sepa"]), {})
    assert "この項目は必須です。" in response.content.decode()  # Django's own, in Japanese


def test_sign_in_errors_in_japanese(client):
    client.logout()
    response = client.post(
        reverse("login"), {"username": "nobody", "password": "wrong"}, headers={"accept-language": "ja"}
    )
    assert "ユーザー名とパスワードの組み合わせが正しくありません。" in response.content.decode()


def test_model_choices_and_names_are_translated():
    with translation.override("ja"):
        assert str(Invoice.Status.PAST_DUE.label) == "支払期限超過"
        assert str(Invoice.Status.UNCOLLECTIBLE.label) == "回収不能"
        assert str(Invoice._meta.verbose_name) == "請求書"
        assert str(Membership.Role.VIEWER.label) == "閲覧者"
        # The status is a state, the support action a verb: two entries for one English word.
        assert str(Invoice.Status.VOID.label) == "無効"
        assert translation.pgettext("admin action", "Void") == "無効にする"


def test_activity_log_in_japanese(client, japanese):
    account = japanese.account
    invoice = InvoiceFactory(account=account, number="INV-JP-3")
    AuditEventFactory(
        account=account,
        action="invoice.past_due",
        actor_label="staff: sam",
        object_type="invoice",
        object_id=str(invoice.pk),
        before={"status": "open"},
        after={"status": "past_due"},
    )
    html = _get(client, reverse("activity"))
    assert "請求書 INV-JP-3：未払い → 支払期限超過" in html
    assert "サポート（sam）" in html
    assert "請求書が支払期限超過" in html


# Every word a customer reads in the console's templates is marked for translation.

TEMPLATES = Path(settings.BASE_DIR) / "templates"
CUSTOMER_TEMPLATES = sorted(
    path
    for path in TEMPLATES.rglob("*")
    if path.is_file()
    and path.suffix in {".html", ".txt"}
    and "admin" not in path.relative_to(TEMPLATES).parts
)


def _unmarked_words(source: str) -> list[str]:
    source = re.sub(r"{#.*?#}", "", source, flags=re.S)
    source = re.sub(r"{%\s*block body_class\s*%}.*?{%\s*endblock\s*%}", "", source)  # a CSS class
    source = re.sub(r"{%\s*comment\s*%}.*?{%\s*endcomment\s*%}", "", source, flags=re.S)
    source = re.sub(r"{%\s*blocktranslate\b.*?{%\s*endblocktranslate\s*%}", "", source, flags=re.S)
    # Words people read in attributes: labels, titles, placeholders, alternative text.
    attributes = re.findall(r'\b(?:aria-label|title|placeholder|alt)="([^"]*)"', source)
    source = re.sub(r"<(script|style)\b.*?</\1>", "", source, flags=re.S)
    source = re.sub(r"{%.*?%}|{{.*?}}", "", source, flags=re.S)
    source = re.sub(r"<!--.*?-->|<[^>]*>|&\w+;", " ", source, flags=re.S)
    source = re.sub(r"#[\w-]+", "", source)  # a link's fragment
    words = re.findall(r"[^\W\d_]{2,}", source)
    for value in attributes:
        words += re.findall(r"[^\W\d_]{2,}", re.sub(r"{%.*?%}|{{.*?}}", "", value))
    return words


@pytest.mark.parametrize("path", CUSTOMER_TEMPLATES, ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_every_word_in_the_console_templates_is_marked_for_translation(path):
    assert _unmarked_words(path.read_text()) == []


def test_the_unmarked_word_check_finds_them():
    assert _unmarked_words('<p title="Hello">{% translate "Fine" %} Not marked</p>') == [
        "Not",
        "marked",
        "Hello",
    ]
    assert _unmarked_words('<a aria-label="{% translate \'Fine\' %}" href="#x">{{ x }}</a>') == []


def test_the_console_script_takes_its_words_from_the_page():
    """console.js announces what the server says (JSON messages, data-error-text rendered translated):
    no sentence of its own, which would stay English on a Japanese page."""
    script = (Path(settings.BASE_DIR) / "static" / "console" / "console.js").read_text()
    script = re.sub(r"/\*.*?\*/|//[^\n]*", "", script, flags=re.S)
    literals = re.findall(r'"((?:[^"\\]|\\.)*)"|\'((?:[^\'\\]|\\.)*)\'', script)
    words = [
        a or b for a, b in literals if (a or b) != "use strict" and not re.search(r"[#.\[\]:>,=]", a or b)
    ]
    assert [text for text in words if re.search(r"[A-Za-z]{2,} [A-Za-z]{2,}", text)] == []
