"""Every kind of email reaches each member in their own language, HTML and text alike, with amounts
in the currency's own decimals (JPY has none)."""

import copy
import html
import re

import pytest
from django.core import mail

from accounts.models import Membership
from notifications.models import SentEmail
from notifications.services import notification_queue
from tests.factories import AccountFactory, MembershipFactory, ProfileFactory, UserFactory
from tests.test_notifications_templates import CASES

pytestmark = pytest.mark.django_db

Kind = SentEmail.Kind
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
# Words that stay as they are in Japanese: the time zone, "IP address", "the API".
LATIN_IN_JAPANESE = {"UTC", "IP", "API", "PDF"}


def _values(value) -> list[str]:
    if isinstance(value, dict):
        return [v for item in value.values() for v in _values(item)]
    if isinstance(value, list):
        return [v for item in value for v in _values(item)]
    return [str(value)] if value not in (None, "") else []


def _visible(markup: str) -> str:
    markup = re.sub(r"<(style|title|head)\b.*?</\1>", " ", markup, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", markup))


def _stray_english(text: str, context: dict) -> list[str]:
    """Latin words in a Japanese email that are not data (a card's brand, a name, an address …)."""
    text = re.sub(r"https?://\S+|\S+@\S+", " ", text)
    allowed = set(LATIN_IN_JAPANESE)
    for value in _values(context):
        allowed.update(re.findall(r"[A-Za-z]+", value))
    return [word for word in re.findall(r"[A-Za-z]{2,}", text) if word not in allowed]


def _context(kind) -> dict:
    """The templates test's realistic context, with every amount in yen."""
    context = copy.deepcopy(CASES[kind][0])
    if "amount_minor" in context:
        context.update(amount_minor=1_250_000, currency="JPY")
    return context


@pytest.fixture
def account():
    account = AccountFactory(name="サンプル商事", billing_email="billing@sample.example", currency="JPY")
    for username, language in (("hanako", "ja"), ("jane", "en")):
        user = UserFactory(username=username, email=f"{username}@sample.example")
        ProfileFactory(user=user, language=language)
        MembershipFactory(account=account, user=user, role=Membership.Role.OWNER)
    return account


def _sent_to(address):
    messages = [m for m in mail.outbox if address in m.to]
    assert len(messages) == 1, [m.to for m in mail.outbox]
    message = messages[0]
    (html_body, mimetype), *_ = message.alternatives
    assert mimetype == "text/html"
    return message.subject, message.body, html_body


@pytest.mark.parametrize("kind", list(Kind))
def test_each_member_gets_the_email_in_their_language(kind, account, django_capture_on_commit_callbacks):
    context = _context(kind)
    with django_capture_on_commit_callbacks(execute=True):
        email = notification_queue(account=account, kind=kind, event_key=f"i18n-{kind}", context=context)
    assert email is not None
    email.refresh_from_db()
    assert email.status == SentEmail.Status.SENT, email.error
    assert email.languages["hanako@sample.example"] == "ja"

    subject, text, html_body = _sent_to("hanako@sample.example")
    assert 'lang="ja"' in html_body
    for part in (subject, text, _visible(html_body)):
        assert JAPANESE.search(part), part
        assert _stray_english(part, context) == [], part
    assert "請求管理コンソール" in text

    english_subject, english_text, english_html = _sent_to("jane@sample.example")
    assert 'lang="en"' in english_html
    assert not JAPANESE.search((english_subject + english_text).replace(account.name, ""))
    assert english_subject != subject

    if "amount_minor" in context:
        assert "￥1,250,000" in text and "￥1,250,000" in html_body
        assert "¥1,250,000" in english_text and "¥1,250,000" in english_html
        for part in (text, html_body, english_text, english_html):
            assert "1,250,000." not in part  # no decimals for yen


def test_the_billing_address_of_a_japanese_member_gets_japanese(django_capture_on_commit_callbacks):
    account = AccountFactory(billing_email="keiri@sample.example", currency="JPY")
    user = UserFactory(username="keiri", email="keiri@sample.example")
    ProfileFactory(user=user, language="ja")
    MembershipFactory(account=account, user=user, role=Membership.Role.VIEWER)
    with django_capture_on_commit_callbacks(execute=True):
        notification_queue(
            account=account, kind=Kind.ALL_FAILED, event_key="i18n-billing", context=_context(Kind.ALL_FAILED)
        )
    subject, text, _html = _sent_to("keiri@sample.example")
    assert subject.startswith("【要対応】請求書 INV-2026-0042")
    assert "￥1,250,000" in text
