"""Every notification renders as HTML and plain text, in every language, with no missing variable,
no untranslatable string, no token and no number longer than a last four."""

import copy
import html
import re
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import translation

from notifications.models import SentEmail
from notifications.rendering import render_email

TEMPLATE_DIR = Path(django_settings.BASE_DIR) / "templates" / "notifications"
Kind = SentEmail.Kind

INVOICE = {"invoice_number": "INV-2026-0042", "invoice_id": 42, "amount_minor": 1_250_000, "currency": "JPY"}
SECURITY_CHANGE = {
    "action": "charge_order.changed",
    "method": "",
    "expiry_before": "",
    "expiry_after": "",
    "order_changed": True,
    "order_before": [
        {"method": "Visa •••• 4242", "position": 1},
        {"method": "Mastercard •••• 4444", "position": 2},
    ],
    "order_after": [
        {"method": "Mastercard •••• 4444", "position": 1},
        {"method": "Visa •••• 4242", "position": 2},
    ],
    "occurred_at": "2026-11-26T04:50:00+00:00",
    "ip_address": "203.0.113.7",
    "via": "api",
}
SECURITY_ACTOR = {"name": "Jane Doe", "email": "jane@customer.example", "staff": False}


def security_context(*changes: dict, actor=SECURITY_ACTOR) -> dict:
    """A stored security notice: who, and each change they made (by default, one reorder)."""
    return {"actor": actor, "changes": [{**SECURITY_CHANGE, **change} for change in changes or [{}]]}


SECURITY = security_context()

# A realistic stored context per kind, and words each rendering must contain (in English).
CASES = {
    Kind.BACKUP_CHARGED: (
        {
            **INVOICE,
            "charged": {"method": "Mastercard •••• 4444", "position": 2},
            "failures": [{"method": "Visa •••• 0002", "position": 1, "decline_code": "insufficient_funds"}],
        },
        [
            "INV-2026-0042",
            "¥1,250,000",
            "Mastercard •••• 4444",
            "Backup 1",
            "Visa •••• 0002",
            "Primary",
            "insufficient funds",
            "/invoices/42/",
            "/payment-methods/",
        ],
    ),
    Kind.ALL_FAILED: (
        {
            **INVOICE,
            "amount_minor": 12_500,
            "currency": "USD",
            "failures": [{"method": "Visa •••• 0002", "position": 1, "decline_code": "lost_card"}],
            "skipped": [{"method": "Visa •••• 0069", "position": 2, "skip_reason": "expired"}],
            "next_attempt_at": "2026-12-02T03:00:00+00:00",
            "attempts_left": 3,
        },
        [
            "INV-2026-0042",
            "$125.00",
            "Visa •••• 0002",
            "the card was reported lost",
            "Visa •••• 0069",
            "Backup 1",
            "The method had expired",
            "Dec. 2, 2026",
            "3 more tries",
            "/invoices/42/",
        ],
    ),
    Kind.ACCOUNT_SUSPENDED: (
        {**INVOICE, "amount_minor": 12_500, "currency": "KWD"},
        ["INV-2026-0042", "KWD", "12.500", "is suspended", "/invoices/42/"],
    ),
    Kind.METHOD_EXPIRING: (
        {
            "method": "Visa •••• 4242",
            "method_id": 7,
            "position": 1,
            "expires_on": "2026-12-31",
            "days_left": 30,
            "threshold": 30,
            "fallback": {"method": "Mastercard •••• 4444", "position": 2},
        },
        [
            "Visa •••• 4242",
            "expires in 30 days",
            "Primary",
            "December 2026",
            "Mastercard •••• 4444",
            "Backup 1",
            "instead",
            "/payment-methods/#method-7",
        ],
    ),
    Kind.AUTHENTICATION_REQUIRED: (
        {**INVOICE, "amount_minor": 12_500, "currency": "EUR", "method": "Visa •••• 3184", "position": 1},
        ["INV-2026-0042", "€125.00", "Visa •••• 3184", "Primary", "confirm", "/invoices/42/authenticate/"],
    ),
    Kind.RECEIPT: (
        {
            **INVOICE,
            "amount_minor": 1_234,
            "currency": "KWD",
            "method": "Visa •••• 4242",
            "paid_at": "2026-11-26T04:50:00+00:00",
        },
        [
            "Receipt",
            "INV-2026-0042",
            "KWD",
            "1.234",
            "Visa •••• 4242",
            "Nov. 26, 2026",
            "PDF",
            "/invoices/42/",
        ],
    ),
    Kind.SECURITY_NOTICE: (
        SECURITY,
        [
            "charge order",
            "Jane Doe",
            "jane@customer.example",
            "203.0.113.7",
            "the API",
            "Nov. 26, 2026",
            "Charge order before",
            "Charge order after",
            "Visa •••• 4242",
            "Mastercard •••• 4444",
            "/payment-methods/",
        ],
    ),
    Kind.INVITATION: (
        {
            "invitation_id": 42,
            "role": "billing",
            "inviter": {"name": "Jane Doe", "email": "jane@customer.example", "staff": False},
            "expires_at": "2026-12-03T04:50:00+00:00",
        },
        [
            "Jane Doe invited you to join Smith & Co in the billing console as Billing.",
            "Billing members manage payment methods and pay invoices.",
            "/invitations/42:",
            "Dec. 3, 2026",
            "works once",
        ],
    ),
}


@pytest.fixture
def strict_templates(settings):
    """A variable a template names but the context lacks renders as a marker the tests look for."""
    settings.TEMPLATES = [
        {**t, "OPTIONS": {**t.get("OPTIONS", {}), "string_if_invalid": "MISSING[%s]"}}
        for t in settings.TEMPLATES
    ]


def visible_text(markup: str) -> str:
    markup = re.sub(r"<(style|title)\b.*?</\1>", " ", markup, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", markup))


def assert_clean(rendered, account_name="Smith & Co"):
    for part in (rendered.subject, rendered.text, rendered.html):
        assert "MISSING[" not in part
        assert "tok_" not in part and "fp_" not in part
    for part in (rendered.subject, rendered.text, visible_text(rendered.html)):
        # Nothing longer than a last four: no card, bank account or IBAN digits.
        assert not re.search(r"\d{5,}", part), re.search(r"\d{5,}", part)
    assert "\n" not in rendered.subject
    # Plain text is not HTML: no escaping, no markup; HTML escapes what the customer typed.
    assert account_name in rendered.text and "&amp;" not in rendered.text and "<" not in rendered.text
    assert "Smith &amp; Co" in rendered.html


def test_every_kind_has_a_case():
    assert set(CASES) == set(Kind)


@pytest.mark.django_db
@pytest.mark.parametrize("kind", list(Kind))
def test_every_email_renders_in_html_and_text_with_its_key_content(kind, strict_templates):
    context, expected = CASES[kind]
    with translation.override("en"):
        rendered = render_email(kind=kind, context=copy.deepcopy(context), account_name="Smith & Co")
    assert_clean(rendered)
    for words in expected:
        assert words in rendered.text, words
        assert words in visible_text(rendered.html) or words in rendered.html, words
    assert rendered.html.lstrip().startswith("<!doctype html>")
    assert 'lang="en"' in rendered.html
    assert "http://testserver" not in rendered.html  # links are absolute, from SITE_URL
    assert f'href="{django_settings.SITE_URL}/' in rendered.html
    # The subject is the heading, and the HTML's title.
    assert rendered.subject in rendered.text
    assert f"<title>{html.escape(rendered.subject, quote=False)}</title>" in rendered.html
    assert re.search(rf"<h1[^>]*>{re.escape(html.escape(rendered.subject, quote=False))}</h1>", rendered.html)


@pytest.mark.django_db
@pytest.mark.parametrize("kind", list(Kind))
def test_every_email_renders_in_japanese(kind, strict_templates):
    context, _expected = CASES[kind]
    with translation.override("ja"):
        rendered = render_email(kind=kind, context=copy.deepcopy(context), account_name="Smith & Co")
    assert_clean(rendered)
    assert 'lang="ja"' in rendered.html


@pytest.mark.django_db
def test_money_and_dates_follow_the_recipients_language():
    context, _ = CASES[Kind.ALL_FAILED]
    context = {**context, "amount_minor": 1_250_000, "currency": "JPY"}
    with translation.override("en"):
        english = render_email(kind=Kind.ALL_FAILED, context=context, account_name="A")
    with translation.override("ja"):
        japanese = render_email(kind=Kind.ALL_FAILED, context=context, account_name="A")
    assert "¥1,250,000" in english.text and "Dec. 2, 2026" in english.text
    assert "￥1,250,000" in japanese.text and "2026年12月2日" in japanese.text


SECURITY_VARIANTS = {
    "added": (
        {"action": "method.added", "method": "Visa •••• 4242", "order_changed": True, "order_before": []},
        ["Visa •••• 4242 was added", "No payment method"],
    ),
    "updated": (
        {
            "action": "method.updated",
            "method": "Visa •••• 4242",
            "expiry_before": "12/2026",
            "expiry_after": "01/2030",
            "order_changed": False,
        },
        ["expiry date of Visa •••• 4242 changed from 12/2026 to 01/2030"],
    ),
    "removed": (
        {"action": "method.removed", "method": "Visa •••• 4242"},
        ["Visa •••• 4242 was removed", "removed from Smith & Co"],
    ),
    "staff in admin": (
        {"actor": {"name": "Sam", "email": "sam@billing.example", "staff": True}, "via": "admin"},
        ["Sam, of our support staff", "the support console"],
    ),
    "console": ({"via": "console"}, ["the billing console"]),
    "billing contacts": (
        {
            "action": "billing_contacts.changed",
            "order_changed": False,
            "contacts_before": "ap@smith.example",
            "contacts_after": "ap@smith.example, cfo@smith.example",
        },
        [
            "The addresses that receive invoice and payment emails changed from ap@smith.example to "
            "ap@smith.example, cfo@smith.example.",
            "the billing contacts of Smith & Co changed",
        ],
    ),
    "member's role": (
        {
            "action": "member.role_changed",
            "order_changed": False,
            "member": "vic@smith.example",
            "role_before": "viewer",
            "role_after": "owner",
        },
        ["The role of vic@smith.example changed from Viewer to Owner.", "the members of Smith & Co changed"],
    ),
    "member removed": (
        {
            "action": "member.removed",
            "order_changed": False,
            "member": "vic@smith.example",
            "role_before": "owner",
        },
        ["vic@smith.example was removed from the account.", "the members of Smith & Co changed"],
    ),
    "no member": ({"actor": None, "via": "", "ip_address": ""}, ["An automated process"]),
}


@pytest.mark.django_db
@pytest.mark.parametrize("variant", list(SECURITY_VARIANTS))
def test_security_notice_variants(variant, strict_templates):
    change, expected = SECURITY_VARIANTS[variant]
    change = dict(change)
    context = security_context(change, actor=change.pop("actor", SECURITY_ACTOR))
    with translation.override("en"):
        rendered = render_email(kind=Kind.SECURITY_NOTICE, context=context, account_name="Smith & Co")
    assert_clean(rendered)
    for words in expected:
        assert words in rendered.subject or words in " ".join(rendered.text.split()), words
    if not context["changes"][0]["order_changed"]:
        assert "Charge order before" not in rendered.text


EXPIRY_VARIANTS = {
    "primary, a backup pays instead": ({}, "will be charged to Mastercard •••• 4444 (Backup 1) instead"),
    "primary, nothing can pay": ({"fallback": None}, "your invoices will go unpaid"),
    "backup, a later backup is tried": (
        {"position": 2, "fallback": {"method": "Amex •••• 0005", "position": 3}},
        "it will be skipped, and Amex •••• 0005 (Backup 2) will be tried in its place",
    ),
    "backup, nothing after it": ({"position": 3, "fallback": None}, "no method ranked after it"),
    "today": ({"days_left": 0, "threshold": 7}, "expires today"),
    "one day": ({"days_left": 1, "threshold": 7}, "expires in 1 day"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("variant", list(EXPIRY_VARIANTS))
def test_expiry_reminder_says_what_pays_instead(variant, strict_templates):
    changes, expected = EXPIRY_VARIANTS[variant]
    context = {**CASES[Kind.METHOD_EXPIRING][0], **changes}
    with translation.override("en"):
        rendered = render_email(kind=Kind.METHOD_EXPIRING, context=context, account_name="Smith & Co")
    assert_clean(rendered)
    assert expected in " ".join(rendered.text.split())


@pytest.mark.django_db
def test_all_failed_without_any_method_in_the_charge_order(strict_templates):
    context = {**CASES[Kind.ALL_FAILED][0], "failures": [], "skipped": [], "next_attempt_at": ""}
    rendered = render_email(kind=Kind.ALL_FAILED, context=context, account_name="Smith & Co")
    assert "Your charge order has no payment method." in rendered.text
    assert "try again" not in rendered.text


@pytest.mark.django_db
def test_the_footer_says_whether_an_email_can_be_turned_off():
    for kind, (context, _) in CASES.items():
        rendered = render_email(kind=kind, context=context, account_name="A")
        optional = kind not in SentEmail.ALWAYS_SENT
        assert ("turn off optional emails" in rendered.text) is optional, kind
        assert ("/settings/" in rendered.text) is optional, kind


def _untranslated_words(source: str) -> list[str]:
    source = re.sub(r"#[\w-]+(?={{)", "", source)  # a link's fragment: #method-{{ method_id }}
    source = re.sub(r"{%\s*comment\s*%}.*?{%\s*endcomment\s*%}", "", source, flags=re.S)
    source = re.sub(r"{%\s*blocktranslate\b.*?{%\s*endblocktranslate\s*%}", "", source, flags=re.S)
    source = re.sub(r"{%.*?%}|{{.*?}}|{#.*?#}", "", source, flags=re.S)
    source = re.sub(r"<!--.*?-->|<[^>]*>|&\w+;", "", source, flags=re.S)
    return re.findall(r"[^\W\d_]{2,}", source)


@pytest.mark.parametrize("path", sorted(TEMPLATE_DIR.iterdir()), ids=lambda p: p.name)
def test_every_string_in_the_templates_is_marked_for_translation(path):
    assert _untranslated_words(path.read_text()) == []


def test_the_translation_check_finds_an_unmarked_string():
    assert _untranslated_words("{% load i18n %}<p>{% translate 'Fine' %} Not marked</p>") == ["Not", "marked"]


@pytest.mark.django_db
@pytest.mark.parametrize("kind", list(Kind))
def test_every_link_opens_the_console_in_the_emails_account(kind, strict_templates):
    """A member of several accounts lands in the one the email is about, whichever they last used."""
    context, _expected = CASES[kind]
    with translation.override("en"):
        rendered = render_email(kind=kind, context=copy.deepcopy(context), account_name="A", account_id=7)
    for part in (rendered.text, rendered.html):
        links = re.findall(re.escape(django_settings.SITE_URL) + r"/[^\s\"<]*", part)
        assert links
        for link in links:
            if kind == Kind.INVITATION:
                # The invited person is no member yet: the link names the invitation, not the account.
                assert re.search(r"/invitations/42:[\w-]+/$", link), link
            else:
                assert re.search(r"\?account=7(#method-\d+)?$", link), link
    if kind == Kind.METHOD_EXPIRING:
        assert f"{django_settings.SITE_URL}/payment-methods/?account=7#method-7" in rendered.text
