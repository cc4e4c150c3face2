"""Signing in and out, throttling password guessing, resetting a password, switching accounts."""

import html
import re

import pytest
from django.core import mail
from django.core.cache import cache
from django.urls import reverse

from accounts.middleware import SESSION_KEY
from accounts.models import Membership
from tests.factories import AccountFactory, InvoiceFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def member():
    return MembershipFactory(
        user=UserFactory(username="dana", email="dana@example.com"), account=AccountFactory(name="Acme")
    )


def _sign_in(client, username="dana", password="password", **extra):
    return client.post(reverse("login"), {"username": username, "password": password}, **extra)


def test_sign_in_page(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "<title>Sign in · Billing console</title>" in body
    assert 'autocomplete="current-password"' in body
    assert "csrfmiddlewaretoken" in body


def test_sign_in_lands_on_the_dashboard_and_sign_out_needs_post(client, member):
    response = _sign_in(client)
    assert response.status_code == 302 and response.url == reverse("dashboard")
    dashboard = client.get(reverse("dashboard"))
    assert dashboard.status_code == 200
    assert "Acme" in dashboard.content.decode()
    assert client.get(reverse("logout")).status_code == 405
    response = client.post(reverse("logout"))
    assert response.status_code == 302 and response.url == reverse("login")
    assert client.get(reverse("dashboard")).status_code == 302


def test_wrong_password_is_a_clear_error(client, member):
    response = _sign_in(client, password="nope")
    assert response.status_code == 200
    assert "do not match" in response.content.decode()


def test_password_guessing_is_throttled_per_username_and_address(client, member, settings):
    settings.SIGNIN_FAILURES_ALLOWED = 3
    for _ in range(3):
        assert "do not match" in _sign_in(client, password="guess").content.decode()
    # Now even the right password is not checked.
    response = _sign_in(client)
    assert response.status_code == 200
    assert "Too many failed sign-in attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session
    # Another address is not blocked, and the counter lives in the shared cache.
    assert _sign_in(client, REMOTE_ADDR="10.9.9.9").status_code == 302
    assert any(key.startswith("signin-failures:") for key in _cache_keys())


def _cache_keys():
    return [key.split(":", 2)[-1] for key in getattr(cache, "_cache", {})]


def test_a_success_clears_the_failure_count(client, member, settings):
    settings.SIGNIN_FAILURES_ALLOWED = 3
    _sign_in(client, password="guess")
    _sign_in(client, password="guess")
    assert _sign_in(client).status_code == 302
    client.post(reverse("logout"))
    _sign_in(client, password="guess")
    _sign_in(client, password="guess")
    assert _sign_in(client).status_code == 302


def test_password_reset_by_email(client, member):
    response = client.post(reverse("password_reset"), {"email": "dana@example.com"})
    assert response.status_code == 302 and response.url == reverse("password_reset_done")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["dana@example.com"]
    assert message.subject == "Reset your billing console password"
    link = re.search(r"https?://[^/]+(/password-reset/\S+/)", message.body).group(1)
    form = client.get(link, follow=True)
    assert form.status_code == 200
    assert "Choose a new password" in form.content.decode()
    done = client.post(
        form.redirect_chain[-1][0],
        {"new_password1": "a-much-longer-secret-42", "new_password2": "a-much-longer-secret-42"},
    )
    assert done.status_code == 302 and done.url == reverse("password_reset_complete")
    assert _sign_in(client, password="a-much-longer-secret-42").status_code == 302


def test_password_reset_does_not_reveal_unknown_addresses(client, member):
    response = client.post(reverse("password_reset"), {"email": "nobody@example.com"})
    assert response.status_code == 302 and response.url == reverse("password_reset_done")
    assert mail.outbox == []


def test_password_reset_emails_to_one_address_are_limited(client, member, settings):
    """Nobody can flood a member's inbox: past the limit the page looks the same and sends nothing."""
    settings.PASSWORD_RESET_EMAILS_PER_HOUR = 2
    other = UserFactory(email="other@customer.example")
    for _ in range(4):
        response = client.post(reverse("password_reset"), {"email": member.user.email.upper()})
        assert response.status_code == 302 and response.url == reverse("password_reset_done")
    assert [m.to for m in mail.outbox] == [[member.user.email]] * 2
    client.post(reverse("password_reset"), {"email": other.email})  # another address has its own count
    assert mail.outbox[-1].to == [other.email] and len(mail.outbox) == 3
    cache.clear()  # an hour later
    client.post(reverse("password_reset"), {"email": member.user.email})
    assert len(mail.outbox) == 4


def test_the_account_switcher(client, member):
    other = MembershipFactory(
        user=member.user, account=AccountFactory(name="Zeta"), role=Membership.Role.VIEWER
    )
    client.force_login(member.user)
    body = client.get(reverse("dashboard")).content.decode()
    assert 'name="account"' in body and "Zeta — Viewer" in body
    response = client.post(reverse("switch_account"), {"account": other.account_id})
    assert response.status_code == 302
    assert client.session[SESSION_KEY] == other.account_id
    body = client.get(reverse("dashboard")).content.decode()
    assert "Zeta" in body
    assert "Add a payment method" not in body  # a viewer there
    assert client.post(reverse("switch_account"), {"account": "x"}).status_code == 404


def switcher_next(body: str) -> str:
    """The page the account switcher's form says it was posted from."""
    form = re.search(r'<form class="switcher".*?</form>', body, re.S).group(0)
    return html.unescape(re.search(r'name="next" value="([^"]*)"', form).group(1))


def test_switching_account_stays_on_the_same_page(client, member):
    other = MembershipFactory(user=member.user, account=AccountFactory(name="Zeta"))
    invoice = InvoiceFactory(account=member.account, number="ACME-1")
    client.force_login(member.user)

    invoices = reverse("invoices") + "?status=open&page=2"
    next_url = switcher_next(client.get(invoices).content.decode())
    assert next_url == invoices
    response = client.post(reverse("switch_account"), {"account": other.account_id, "next": next_url})
    assert response.status_code == 302 and response.url == reverse("invoices") + "?status=open"
    assert client.session[SESSION_KEY] == other.account_id

    # A page of one account's own object (its invoice) has no counterpart in the other: the dashboard.
    client.post(reverse("switch_account"), {"account": member.account_id})
    detail = reverse("invoice_detail", args=[invoice.pk])
    next_url = switcher_next(client.get(detail).content.decode())
    response = client.post(reverse("switch_account"), {"account": other.account_id, "next": next_url})
    assert response.url == reverse("dashboard")

    for unsafe in ("https://evil.example/invoices/", "//evil.example/", "/no-such-page/"):
        response = client.post(reverse("switch_account"), {"account": member.account_id, "next": unsafe})
        assert response.url == reverse("dashboard"), unsafe
    # ?account= in the page's address (an email link) would switch straight back: it is dropped.
    response = client.post(
        reverse("switch_account"),
        {"account": other.account_id, "next": reverse("payment_methods") + f"?account={member.account_id}"},
    )
    assert response.url == reverse("payment_methods")
    assert client.get(response.url).context["current_account"].pk == other.account_id


def test_a_link_naming_another_of_the_members_accounts_opens_it(client, member):
    """Email links carry ?account=: a member of several accounts lands in the right one."""
    other = MembershipFactory(user=member.user, account=AccountFactory(name="Zeta"))
    invoice = InvoiceFactory(account=other.account, number="ZETA-1")
    client.force_login(member.user)
    client.get(reverse("dashboard"))
    assert client.session[SESSION_KEY] == member.account_id
    path = reverse("invoice_detail", args=[invoice.pk])
    assert client.get(path).status_code == 404  # scoped to the current account, as ever
    response = client.get(path, {"account": other.account_id})
    assert response.status_code == 200 and "ZETA-1" in response.content.decode()
    assert client.session[SESSION_KEY] == other.account_id  # and the console stays there
    assert client.get(path).status_code == 200


def test_a_link_naming_an_account_the_member_is_not_in_is_a_404(client, member):
    stranger = AccountFactory(name="Stranger")
    client.force_login(member.user)
    client.get(reverse("dashboard"))
    assert client.get(reverse("dashboard"), {"account": stranger.pk}).status_code == 404
    assert client.get(reverse("dashboard"), {"account": "x"}).status_code == 404
    assert client.session[SESSION_KEY] == member.account_id


def test_only_a_page_the_browser_opens_switches_account(client, member):
    """Another site can embed the URL as an image or a frame: that must not switch account."""
    other = MembershipFactory(user=member.user, account=AccountFactory(name="Zeta"))
    client.force_login(member.user)
    client.get(reverse("dashboard"))
    query = {"account": other.account_id}
    client.get(reverse("dashboard"), query, headers={"Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"})
    client.get(
        reverse("dashboard"), query, headers={"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "iframe"}
    )
    client.post(reverse("dashboard") + f"?account={other.account_id}")
    assert client.session[SESSION_KEY] == member.account_id
    client.get(
        reverse("dashboard"), query, headers={"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}
    )
    assert client.session[SESSION_KEY] == other.account_id


def test_signing_in_from_a_link_opens_the_account_it_names(client, member):
    other = MembershipFactory(user=member.user, account=AccountFactory(name="Zeta"))
    path = reverse("payment_methods") + f"?account={other.account_id}"
    response = client.get(path)
    assert response.status_code == 302 and response.url.startswith(reverse("login"))
    assert f"account%3D{other.account_id}" in response.url  # kept in ?next=
    client.force_login(member.user)
    page = client.get(path)
    assert page.status_code == 200 and client.session[SESSION_KEY] == other.account_id
