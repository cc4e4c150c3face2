"""The members page: owners invite, change roles and remove; the last owner's refusal is shown;
billing members and viewers see the list read-only, and their changes are refused."""

import pytest
from django.core import mail

from accounts.models import AuditEvent, Invitation, Membership
from tests.factories import AccountFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

URL = "/settings/members/"


@pytest.fixture
def account():
    return AccountFactory(name="Acme")


@pytest.fixture
def owner(account):
    return MembershipFactory(account=account, user__username="olga", role=Membership.Role.OWNER)


@pytest.fixture
def viewer(account):
    return MembershipFactory(account=account, user__username="vic", role=Membership.Role.VIEWER)


@pytest.fixture
def billing(account):
    return MembershipFactory(account=account, user__username="bea", role=Membership.Role.BILLING)


def test_an_owner_sees_the_members_and_invites_a_person(
    client, owner, viewer, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    client.force_login(owner.user)
    with django_assert_max_num_queries(12):
        page = client.get(URL).content.decode()
    assert "vic@example.com" in page and f'id="role-{viewer.pk}"' in page
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(URL, {"email": "new@acme.example", "role": "viewer"}, follow=True)
    assert "An invitation was sent to new@acme.example." in response.content.decode()
    assert "new@acme.example" in response.content.decode()  # listed as pending
    assert ["new@acme.example"] in [m.to for m in mail.outbox]
    invitation = Invitation.objects.get()
    assert (invitation.account_id, invitation.role) == (owner.account_id, "viewer")


def test_inviting_a_member_again_shows_why_on_the_form(client, owner, viewer):
    client.force_login(owner.user)
    response = client.post(URL, {"email": viewer.user.email, "role": "owner"})
    assert response.status_code == 400
    assert "is already a member" in response.content.decode()
    assert not Invitation.objects.exists()


def test_an_owner_changes_a_role_and_removes_a_member(client, owner, viewer, billing):
    client.force_login(owner.user)
    response = client.post(f"{URL}{viewer.pk}/", {"action": "role", "role": "billing"}, follow=True)
    assert "vic@example.com is now Billing." in response.content.decode()
    viewer.refresh_from_db()
    assert viewer.role == "billing"
    client.post(f"{URL}{billing.pk}/", {"action": "remove"})
    assert not Membership.objects.filter(pk=billing.pk).exists()
    assert set(AuditEvent.objects.values_list("action", flat=True)) == {
        AuditEvent.Action.MEMBER_ROLE_CHANGED,
        AuditEvent.Action.MEMBER_REMOVED,
    }


def test_the_last_owners_refusal_is_shown(client, owner):
    client.force_login(owner.user)
    response = client.post(f"{URL}{owner.pk}/", {"action": "role", "role": "viewer"}, follow=True)
    assert "An account needs at least one owner." in response.content.decode()
    response = client.post(f"{URL}{owner.pk}/", {"action": "remove"}, follow=True)
    assert "An account needs at least one owner." in response.content.decode()
    owner.refresh_from_db()
    assert owner.role == "owner"


@pytest.mark.parametrize("who", ["viewer", "billing"])
def test_billing_members_and_viewers_see_the_list_read_only(client, owner, viewer, billing, who):
    member = {"viewer": viewer, "billing": billing}[who]
    client.force_login(member.user)
    page = client.get(URL).content.decode()
    assert "olga@example.com" in page
    assert "Only owners can invite, change or remove members." in page
    assert "Send invitation" not in page and "Change role" not in page
    assert client.post(URL, {"email": "x@acme.example", "role": "owner"}).status_code == 403
    assert client.post(f"{URL}{member.pk}/", {"action": "role", "role": "owner"}).status_code == 403
    assert client.post(f"{URL}{owner.pk}/", {"action": "remove"}).status_code == 403
    member.refresh_from_db()
    assert member.role == who and Membership.objects.filter(pk=owner.pk).exists()
    assert not Invitation.objects.exists()


def test_another_accounts_member_or_invitation_is_a_404(client, owner):
    stranger = MembershipFactory(role=Membership.Role.OWNER)
    invitation = Invitation.objects.create(
        account=stranger.account, email="x@y.example", role="viewer", expires_at="2099-01-01T00:00Z"
    )
    client.force_login(owner.user)
    assert client.post(f"{URL}{stranger.pk}/", {"action": "remove"}).status_code == 404
    assert client.post(f"/settings/invitations/{invitation.pk}/cancel/").status_code == 404
    assert Membership.objects.filter(pk=stranger.pk).exists()


def test_an_owner_cancels_an_invitation(client, owner):
    client.force_login(owner.user)
    client.post(URL, {"email": "new@acme.example", "role": "viewer"})
    invitation = Invitation.objects.get()
    client.post(f"/settings/invitations/{invitation.pk}/cancel/")
    invitation.refresh_from_db()
    assert invitation.canceled_at is not None
    page = client.get(URL).content.decode()
    assert "No invitation is waiting to be accepted." in page
    assert f'id="invitation-{invitation.pk}"' not in page


def test_an_owner_leaving_lands_on_the_dashboard(client, owner, account):
    MembershipFactory(account=account, user=UserFactory(), role=Membership.Role.OWNER)
    client.force_login(owner.user)
    response = client.post(f"{URL}{owner.pk}/", {"action": "remove"})
    assert response.status_code == 302 and response["Location"] == "/"


def test_the_activity_log_names_the_member_and_the_roles(client, owner, viewer):
    client.force_login(owner.user)
    client.post(f"{URL}{viewer.pk}/", {"action": "role", "role": "billing"})
    client.post(URL, {"email": "new@acme.example", "role": "owner"})
    page = " ".join(client.get("/activity/").content.decode().split())
    assert "Member&#x27;s role changed" in page or "Member's role changed" in page
    assert "vic@example.com: Viewer → Billing" in page
    assert "new@acme.example (Owner)" in page
