"""Members and billing contacts in a real browser: an owner invites a person, who accepts in a
browser of their own; the owner changes their role and is refused demoting the last owner."""

import re

import pytest
from django.core.cache import cache
from playwright.sync_api import expect

from accounts.models import Account, Membership
from tests.factories import AccountFactory, MembershipFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def account():
    cache.clear()
    account = AccountFactory(name="Acme Robotics", billing_email="billing@acme.example")
    owner = UserFactory(username="demo", password="demo", first_name="Dana", email="dana@acme.example")
    MembershipFactory(user=owner, account=account, role=Membership.Role.OWNER)
    return account


def _context(browser, live_server):
    return browser.new_context(viewport={"width": 1280, "height": 900}, base_url=live_server.url)


@pytest.fixture
def owner_page(browser, live_server, account):
    context = _context(browser, live_server)
    page = context.new_page()
    page.goto("/sign-in/")
    page.get_by_label("Username").fill("demo")
    page.get_by_label("Password").fill("demo")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_title(re.compile("^Dashboard"))
    yield page
    context.close()


def test_invite_accept_change_a_role_and_the_last_owner_refusal(
    browser, live_server, account, owner_page, mailoutbox, screenshots
):
    page = owner_page
    page.goto("/settings/")
    page.get_by_role("navigation", name="Settings").get_by_role("link", name="Members").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Members")
    page.get_by_label("Email address").fill("nina@acme.example")
    page.get_by_label("Role", exact=True).select_option("billing")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.locator(".flash--success")).to_contain_text("An invitation was sent to nina@acme.example.")
    expect(page.locator("#invitation-list")).to_contain_text("nina@acme.example")

    [email] = [m for m in mailoutbox if m.to == ["nina@acme.example"]]
    link = re.search(r"https?://\S+(/invitations/\S+/)", email.body).group(1)

    # The invited person, in a browser of their own, chooses a password and is in.
    invitee = _context(browser, live_server)
    other = invitee.new_page()
    other.goto(link)
    expect(other.get_by_role("heading", level=1)).to_have_text("Join Acme Robotics")
    other.get_by_label("Password", exact=True).fill("a-Long-passphrase-1")
    other.get_by_label("Password again").fill("a-Long-passphrase-1")
    other.get_by_role("button", name="Create my user and join").click()
    expect(other).to_have_title(re.compile("Dashboard"))
    expect(other.locator(".flash--success")).to_contain_text("Welcome to Acme Robotics.")
    # The link worked once.
    other.goto(link)
    expect(other.locator(".form-errors")).to_contain_text("already been used")

    nina = Membership.objects.get(account=account, user__email="nina@acme.example")
    assert nina.role == Membership.Role.BILLING
    page.reload()
    row = page.locator(f"#member-{nina.pk}")
    expect(row).to_contain_text("nina@acme.example")
    row.get_by_label("Role of nina@acme.example").select_option("viewer")
    row.get_by_role("button", name="Change role").click()
    expect(page.locator(".flash--success")).to_contain_text("nina@acme.example is now Viewer.")

    # The last owner cannot step down: the refusal is on screen, and nothing changed.
    me = Membership.objects.get(account=account, user__username="demo")
    mine = page.locator(f"#member-{me.pk}")
    mine.get_by_label("Role of demo").select_option("viewer")
    mine.get_by_role("button", name="Change role").click()
    expect(page.locator(".flash--error")).to_contain_text("An account needs at least one owner.")
    expect(page.locator(f"#role-{me.pk}")).to_have_value("owner")
    page.locator(f"#member-{me.pk}").get_by_role("button", name="Remove").click()
    expect(page.locator(".flash--error")).to_contain_text("An account needs at least one owner.")
    page.screenshot(path=screenshots / "members-owner.png", full_page=True)

    # The viewer sees the list, read-only.
    other.goto("/settings/members/")
    expect(other.locator("#member-list")).to_contain_text("dana@acme.example")
    expect(other.get_by_text("Only owners can invite, change or remove members.")).to_be_visible()
    expect(other.get_by_role("button", name="Change role")).to_have_count(0)
    expect(other.get_by_role("button", name="Send invitation")).to_have_count(0)
    invitee.close()


def test_billing_contacts(owner_page, account):
    page = owner_page
    page.goto("/settings/billing-contacts/")
    expect(page.get_by_label("Billing email")).to_have_value("billing@acme.example")
    page.get_by_label("Further recipient 1").fill("finance@acme.example")
    page.get_by_label("Further recipient 2").fill("not an address")
    page.get_by_role("button", name="Save billing contacts").click()
    expect(page.locator(".field--error")).to_be_visible()
    page.get_by_label("Further recipient 2").fill("cfo@acme.example")
    page.get_by_role("button", name="Save billing contacts").click()
    expect(page.locator(".flash--success")).to_contain_text("The billing contacts were saved.")
    expect(page.get_by_label("Further recipient 2")).to_have_value("cfo@acme.example")
    account = Account.objects.get(pk=account.pk)
    assert account.billing_recipients == ["finance@acme.example", "cfo@acme.example"]
