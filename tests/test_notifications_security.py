"""Security notices: every change to the methods or the charge order tells the owners who changed
what, when and from where, so a hijacked session cannot quietly redirect payments."""

import datetime
import json
import re
from html.parser import HTMLParser

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership
from notifications.models import SentEmail
from notifications.services import notification_deliver_due
from payments.services import (
    ChargeOrderError,
    charge_order_ids,
    charge_order_set,
    payment_method_remove,
    payment_method_update_expiry,
)
from tests import utils
from tests.factories import (
    AccountFactory,
    ChargeOrderEntryFactory,
    MembershipFactory,
    PaymentMethodFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def account():
    return AccountFactory(name="Acme", billing_email="ap@acme.example")


@pytest.fixture
def owner(account):
    user = UserFactory(first_name="Olga", last_name="Owner", email="olga@acme.example")
    MembershipFactory(account=account, user=user, role=Membership.Role.OWNER)
    return user


@pytest.fixture
def billing_member(account):
    user = UserFactory(first_name="Bea", last_name="Baker", email="bea@acme.example")
    MembershipFactory(account=account, user=user, role=Membership.Role.BILLING)
    return user


@pytest.fixture
def ranked(account):
    methods = [
        PaymentMethodFactory(account=account, brand="Visa", last4="4242"),
        PaymentMethodFactory(account=account, brand="Mastercard", last4="4444"),
        PaymentMethodFactory(account=account, brand="Amex", last4="0005"),
    ]
    for position, method in enumerate(methods, start=1):
        ChargeOrderEntryFactory(method=method, position=position)
    return methods


@pytest.fixture
def sent(mailoutbox, django_capture_on_commit_callbacks):
    """Run a change and return the security notices it sent once their window closed."""

    def sent(change):
        before = SentEmail.objects.filter(kind=SentEmail.Kind.SECURITY_NOTICE).count()
        mailoutbox.clear()
        with django_capture_on_commit_callbacks(execute=True):
            result = change()
        window = datetime.timedelta(seconds=settings.SECURITY_NOTICE_WINDOW_SECONDS)
        notification_deliver_due(now=timezone.now() + window)
        notices = SentEmail.objects.filter(kind=SentEmail.Kind.SECURITY_NOTICE)
        assert notices.count() - before == len([m for m in mailoutbox if "Security notice" in m.subject])
        return result, [m for m in mailoutbox if "Security notice" in m.subject]

    return sent


def flat(text: str) -> str:
    return " ".join(text.split())


def test_a_reorder_names_the_member_and_the_order_before_and_after(
    account, owner, billing_member, ranked, sent
):
    visa, mastercard, amex = ranked
    _, [message] = sent(
        lambda: charge_order_set(
            account=account, actor=billing_member, method_ids=[amex.pk, visa.pk, mastercard.pk]
        )
    )
    assert message.to == [owner.email]  # owners only: not the billing member, not the billing address
    assert message.subject == "Security notice: the charge order of Acme changed"
    body = flat(message.body)
    assert "Who: Bea Baker (bea@acme.example)" in body
    assert (
        "Charge order before: Primary: Visa •••• 4242 Backup 1: Mastercard •••• 4444 Backup 2: Amex •••• 0005"
        in body
    )
    assert (
        "Charge order after: Primary: Amex •••• 0005 Backup 1: Visa •••• 4242 Backup 2: Mastercard •••• 4444"
        in body
    )
    assert "From: an internal process" in body  # no request: a script or the shell
    html = message.alternatives[0].content
    assert "Bea Baker" in html and "Charge order before" in html


def test_adding_a_method_says_where_it_was_ranked(account, owner, sent):
    _, [first] = sent(lambda: utils.add_card(account, utils.SUCCEEDS, actor=owner))
    assert first.subject == "Security notice: a payment method was added to Acme"
    assert "What: Visa •••• 4242 was added." in flat(first.body)
    assert "Charge order before: No payment method Charge order after: Primary: Visa •••• 4242" in flat(
        first.body
    )
    _, [second] = sent(lambda: utils.add_card(account, "5555555555554444", actor=owner, in_order=False))
    assert "Charge order" not in second.body  # kept on file, the order did not change


def test_updating_an_expiry_says_from_what_to_what(account, owner, ranked, sent):
    _, [message] = sent(
        lambda: payment_method_update_expiry(method=ranked[0], actor=owner, exp_month=1, exp_year=2031)
    )
    assert f"The expiry date of Visa •••• 4242 changed from 12/{ranked[0].exp_year} to 01/2031." in flat(
        message.body
    )
    assert "Charge order before" not in message.body


def test_removing_the_primary_shows_backup_one_promoted(account, owner, ranked, sent):
    visa, _mastercard, _amex = ranked
    _, [message] = sent(lambda: payment_method_remove(method=visa, actor=owner))
    body = flat(message.body)
    assert message.subject == "Security notice: a payment method was removed from Acme"
    assert "What: Visa •••• 4242 was removed." in body
    assert "Charge order after: Primary: Mastercard •••• 4444 Backup 1: Amex •••• 0005" in body


def test_a_refused_or_unchanged_order_sends_nothing(account, owner, ranked, sent):
    other = PaymentMethodFactory()
    with pytest.raises(ChargeOrderError):
        sent(lambda: charge_order_set(account=account, actor=owner, method_ids=[other.pk]))
    _, notices = sent(
        lambda: charge_order_set(account=account, actor=owner, method_ids=[m.pk for m in ranked])
    )
    assert notices == []


def test_an_owner_who_opted_out_still_gets_security_notices(account, owner, ranked, sent):
    Membership.objects.filter(user=owner).update(email_opt_out=True)
    _, [message] = sent(lambda: payment_method_remove(method=ranked[2], actor=owner))
    assert message.to == [owner.email]


def test_the_notice_keeps_no_token_and_no_long_number(account, owner, sent):
    method, [message] = sent(lambda: utils.add_card(account, utils.SUCCEEDS, actor=owner))
    stored = json.dumps(SentEmail.objects.get(kind=SentEmail.Kind.SECURITY_NOTICE).context)
    assert not re.search(r"\d{5,}", stored), stored  # admin shows it: not even a timestamp's microseconds
    for text in (stored, message.body, message.alternatives[0].content):
        assert method.token not in text and method.fingerprint not in text
        assert utils.SUCCEEDS not in text and "424242" not in text


class FormFinder(HTMLParser):
    """The page's forms, each with its action, hidden inputs and buttons."""

    def __init__(self):
        super().__init__()
        self.forms, self._button = [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attrs.get("action"), "inputs": {}, "buttons": []})
        elif tag == "input" and self.forms and attrs.get("type") == "hidden":
            self.forms[-1]["inputs"][attrs.get("name")] = attrs.get("value", "")
        elif tag == "button" and self.forms:
            self._button = {**attrs, "text": ""}
            self.forms[-1]["buttons"].append(self._button)

    def handle_data(self, data):
        if self._button is not None:
            self._button["text"] += data

    def handle_endtag(self, tag):
        if tag == "button":
            self._button = None


def move_up_form(page: str, method_id: int) -> tuple[str, dict]:
    finder = FormFinder()
    finder.feed(page)
    for form in finder.forms:
        for button in form["buttons"]:
            if button["text"].strip() == "Move up" and f"/{method_id}/" in (form["action"] or ""):
                return form["action"], {**form["inputs"], button["name"]: button["value"]}
    raise AssertionError(f"no Move up form for method {method_id}")


def test_a_reorder_in_the_console_sends_one_notice_naming_the_member(
    client, account, owner, billing_member, ranked, sent
):
    visa, mastercard, amex = ranked
    client.force_login(billing_member)
    url, data = move_up_form(client.get(reverse("payment_methods")).content.decode(), amex.pk)
    response, [message] = sent(lambda: client.post(url, data))
    assert response.status_code == 302
    assert charge_order_ids(account=account) == [visa.pk, amex.pk, mastercard.pk]
    body = flat(message.body)
    assert message.to == [owner.email]
    assert "Who: Bea Baker (bea@acme.example)" in body
    assert "From: the billing console, IP address 127.0.0.1" in body
    assert "Charge order after: Primary: Visa •••• 4242 Backup 1: Amex •••• 0005" in body


def test_a_reorder_through_the_api_sends_one_notice_naming_the_member(
    client, account, owner, billing_member, ranked, sent
):
    visa, mastercard, _amex = ranked
    client.force_login(billing_member)
    response, [message] = sent(
        lambda: client.put(
            "/api/charge-order/",
            json.dumps({"primary": mastercard.pk, "backups": [visa.pk]}),
            content_type="application/json",
        )
    )
    assert response.status_code == 200, response.content
    assert charge_order_ids(account=account) == [mastercard.pk, visa.pk]
    body = flat(message.body)
    assert message.to == [owner.email]
    assert "Who: Bea Baker (bea@acme.example)" in body
    assert "From: the API, IP address 127.0.0.1" in body
    assert "Charge order after: Primary: Mastercard •••• 4444 Backup 1: Visa •••• 4242" in body
    assert "Amex •••• 0005" in body  # it was Backup 2 before


def test_links_open_the_console_at_the_address_the_change_was_made_on(
    client, settings, account, owner, ranked, sent, mailoutbox
):
    """A console served on another port (development) links to itself, as password resets do."""
    settings.ALLOWED_HOSTS = ["testserver", "127.0.0.1"]
    console = "http://127.0.0.1:8123"
    assert not settings.SITE_URL.startswith(console)
    client.force_login(owner)
    page = client.get(reverse("payment_methods"), HTTP_HOST="127.0.0.1:8123").content.decode()
    url, data = move_up_form(page, ranked[2].pk)
    _, [message] = sent(lambda: client.post(url, data, HTTP_HOST="127.0.0.1:8123"))
    assert f"{console}/payment-methods/?account={account.pk}" in message.body
    assert settings.SITE_URL not in message.body + message.alternatives[0].content

    client.logout()
    mailoutbox.clear()
    client.post(reverse("password_reset"), {"email": owner.email}, HTTP_HOST="127.0.0.1:8123")
    [reset] = mailoutbox
    assert f"{console}/password-reset/" in reset.body
