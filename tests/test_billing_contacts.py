"""Billing contacts: the billing email and up to BILLING_MAX_RECIPIENTS further recipients get the
account's invoice and payment emails; security notices still go to the owners only. Each change is
audited and told to the owners; viewers read them, only owners and billing members change them."""

import datetime

import pytest
from django.conf import settings
from django.core import mail
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.billing_contacts import BillingContactsError, billing_contacts_set
from accounts.models import Account, AuditEvent, Membership
from notifications.models import SentEmail
from notifications.services import OWNER_ROLES, notification_deliver_due, recipients_for
from tests.factories import AccountFactory, MembershipFactory, TokenFactory, UserFactory

pytestmark = pytest.mark.django_db

URL = "/api/account/billing-contacts/"


@pytest.fixture
def account():
    return AccountFactory(name="Acme", billing_email="ap@acme.example")


@pytest.fixture
def owner(account):
    user = UserFactory(username="olga", first_name="Olga", email="olga@acme.example")
    MembershipFactory(account=account, user=user, role=Membership.Role.OWNER)
    return user


@pytest.fixture
def billing(account):
    user = UserFactory(username="bea", first_name="Bea", email="bea@acme.example")
    MembershipFactory(account=account, user=user, role=Membership.Role.BILLING)
    return user


@pytest.fixture
def viewer(account):
    user = UserFactory(username="vic", email="vic@acme.example")
    MembershipFactory(account=account, user=user, role=Membership.Role.VIEWER)
    return user


def _set(account, actor, billing_email="ap@acme.example", recipients=()):
    return billing_contacts_set(
        account=account, actor=actor, billing_email=billing_email, recipients=list(recipients)
    )


def test_further_recipients_get_billing_emails_but_not_security_notices(account, owner, billing):
    _set(account, billing, recipients=["finance@acme.example", "cfo@acme.example"])
    account.refresh_from_db()
    for kind in (SentEmail.Kind.BACKUP_CHARGED, SentEmail.Kind.ALL_FAILED, SentEmail.Kind.METHOD_EXPIRING):
        assert set(recipients_for(account=account, kind=kind)) == {
            "olga@acme.example",
            "bea@acme.example",
            "ap@acme.example",
            "finance@acme.example",
            "cfo@acme.example",
        }
    notice = recipients_for(account=account, kind=SentEmail.Kind.SECURITY_NOTICE, roles=OWNER_ROLES)
    assert set(notice) == {"olga@acme.example"}


def test_a_change_is_audited_and_the_owners_are_told_who_changed_what(
    account, owner, billing, django_capture_on_commit_callbacks
):
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        _set(account, billing, billing_email="invoices@acme.example", recipients=["finance@acme.example"])
    # The notice leaves when its window closes (send_notifications), with any further change.
    assert mail.outbox == []
    notification_deliver_due(
        now=timezone.now() + datetime.timedelta(seconds=settings.SECURITY_NOTICE_WINDOW_SECONDS)
    )
    event = AuditEvent.objects.get(action=AuditEvent.Action.BILLING_CONTACTS_CHANGED)
    assert event.actor == billing
    assert event.before == {"billing_email": "ap@acme.example", "recipients": []}
    assert event.after == {"billing_email": "invoices@acme.example", "recipients": ["finance@acme.example"]}
    [notice] = mail.outbox
    assert notice.to == ["olga@acme.example"]  # the owners only, not the new addresses
    assert "billing contacts of Acme changed" in notice.subject
    body = " ".join(notice.body.split())
    assert "Bea (bea@acme.example)" in body
    assert "from ap@acme.example to invoices@acme.example, finance@acme.example" in body


def test_saving_the_same_contacts_records_nothing(account, owner):
    _set(account, owner, recipients=["finance@acme.example"])
    _set(account, owner, recipients=["finance@acme.example"])
    assert AuditEvent.objects.filter(action=AuditEvent.Action.BILLING_CONTACTS_CHANGED).count() == 1


def test_an_address_given_twice_or_the_billing_email_again_is_kept_once(account, owner):
    contacts = _set(account, owner, recipients=["a@acme.example", "A@acme.example", "AP@acme.example", ""])
    assert contacts == {"billing_email": "ap@acme.example", "recipients": ["a@acme.example"]}


def test_more_than_five_recipients_or_a_bad_address_is_refused_whole(account, owner, settings):
    assert settings.BILLING_MAX_RECIPIENTS == 5
    with pytest.raises(BillingContactsError) as too_many:
        _set(account, owner, recipients=[f"r{n}@acme.example" for n in range(6)])
    assert "at most 5" in str(too_many.value.message_dict["recipients"])
    with pytest.raises(BillingContactsError) as bad:
        _set(account, owner, billing_email="nobody", recipients=["fine@acme.example", "not an address"])
    assert set(bad.value.message_dict) == {"billing_email", "recipients"}
    account.refresh_from_db()
    assert (account.billing_email, account.billing_recipients) == ("ap@acme.example", [])
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.BILLING_CONTACTS_CHANGED).exists()


# The console ------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["owner", "billing"])
def test_owners_and_billing_members_change_them_in_the_console(client, account, owner, billing, who):
    client.force_login({"owner": owner, "billing": billing}[who])
    page = client.get("/settings/billing-contacts/")
    assert page.status_code == 200
    assert b'name="recipient_5"' in page.content and b'name="recipient_6"' not in page.content
    response = client.post(
        "/settings/billing-contacts/",
        {"billing_email": "invoices@acme.example", "recipient_1": "", "recipient_2": "finance@acme.example"},
    )
    assert response.status_code == 302
    account.refresh_from_db()
    assert (account.billing_email, account.billing_recipients) == (
        "invoices@acme.example",
        ["finance@acme.example"],
    )
    assert "finance@acme.example" in client.get("/settings/billing-contacts/").content.decode()


def test_a_bad_address_shows_on_the_form(client, account, owner):
    client.force_login(owner)
    response = client.post("/settings/billing-contacts/", {"billing_email": "nope"})
    assert response.status_code == 200
    assert "field--error" in response.content.decode()
    account.refresh_from_db()
    assert account.billing_email == "ap@acme.example"


def test_viewers_read_the_billing_contacts_but_cannot_change_them(client, account, viewer):
    client.force_login(viewer)
    page = client.get("/settings/billing-contacts/").content.decode()
    assert "ap@acme.example" in page
    assert "Only owners and billing members can change the billing contacts." in page
    assert "disabled" in page and "Save billing contacts" not in page
    response = client.post("/settings/billing-contacts/", {"billing_email": "evil@example.com"})
    assert response.status_code == 403
    account.refresh_from_db()
    assert account.billing_email == "ap@acme.example"


# The API ----------------------------------------------------------------------------------------


def _api(user) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {TokenFactory(user=user).key}")
    return api


def test_the_api_reads_and_replaces_them(account, owner):
    api = _api(owner)
    assert api.get(URL).json() == {"billing_email": "ap@acme.example", "recipients": [], "max_recipients": 5}
    response = api.put(
        URL, {"billing_email": "invoices@acme.example", "recipients": ["finance@acme.example"]}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["recipients"] == ["finance@acme.example"]
    assert Account.objects.get(pk=account.pk).billing_email == "invoices@acme.example"


def test_the_api_refuses_a_bad_address_with_a_message_per_field(account, owner):
    response = _api(owner).put(URL, {"billing_email": "x", "recipients": ["y"]}, format="json")
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"billing_email", "recipients"}


def test_the_api_refuses_six_recipients(account, owner):
    recipients = [f"r{n}@acme.example" for n in range(6)]
    response = _api(owner).put(
        URL, {"billing_email": "ap@acme.example", "recipients": recipients}, format="json"
    )
    assert response.status_code == 400
    assert "recipients" in response.json()["errors"]


def test_viewers_read_them_over_the_api_but_cannot_replace_them(account, viewer):
    api = _api(viewer)
    assert api.get(URL).status_code == 200
    response = api.put(URL, {"billing_email": "evil@example.com", "recipients": []}, format="json")
    assert response.status_code == 403
    assert Account.objects.get(pk=account.pk).billing_email == "ap@acme.example"


def test_the_api_shows_only_the_callers_account(account, owner):
    api = _api(MembershipFactory(account=AccountFactory(billing_email="b@other.example")).user)
    assert api.get(URL).json()["billing_email"] == "b@other.example"
    assert api.get(URL, HTTP_X_ACCOUNT=str(account.pk)).status_code == 404


def test_the_activity_log_shows_the_addresses_before_and_after(client, account, owner):
    _set(account, owner, recipients=["finance@acme.example"])
    client.force_login(owner)
    page = client.get("/activity/").content.decode()
    assert "Billing contacts changed" in page
    assert "ap@acme.example → ap@acme.example, finance@acme.example" in page
