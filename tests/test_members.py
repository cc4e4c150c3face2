"""Members: owners invite by email to a role, change roles and remove members; an invitation is a
signed, expiring, single-use link; the last owner can be neither removed nor demoted; every change
is audited and told to the owners; billing members and viewers read the list only."""

import datetime
import re
import threading

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.db import connections
from django.http import Http404
from django.utils import timezone, translation

from accounts import members
from accounts.models import AuditEvent, Invitation, Membership
from notifications.models import SentEmail
from notifications.services import notification_deliver_due
from tests.factories import AccountFactory, MembershipFactory, ProfileFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def account():
    return AccountFactory(name="Acme", billing_email="ap@acme.example")


@pytest.fixture
def owner(account):
    user = UserFactory(username="olga", first_name="Olga", email="olga@acme.example")
    MembershipFactory(account=account, user=user, role=Membership.Role.OWNER)
    return user


@pytest.fixture
def viewer(account):
    user = UserFactory(username="vic", email="vic@acme.example")
    MembershipFactory(account=account, user=user, role=Membership.Role.VIEWER)
    return user


@pytest.fixture
def billing(account):
    user = UserFactory(username="bea", email="bea@acme.example")
    MembershipFactory(account=account, user=user, role=Membership.Role.BILLING)
    return user


@pytest.fixture
def emails(django_capture_on_commit_callbacks):
    """Run a change and return the emails it sent (they leave on commit)."""

    def run(change):
        mail.outbox.clear()
        with django_capture_on_commit_callbacks(execute=True):
            result = change()
        # Security notices leave when their window closes (send_notifications).
        notification_deliver_due(
            now=timezone.now() + datetime.timedelta(seconds=settings.SECURITY_NOTICE_WINDOW_SECONDS)
        )
        return result, list(mail.outbox)

    return run


def _about(*, days: int):
    return pytest.approx(timezone.now() + datetime.timedelta(days=days), abs=datetime.timedelta(minutes=1))


def _invite(account, owner, email="new@acme.example", role=Membership.Role.BILLING):
    return members.invitation_create(account=account, actor=owner, email=email, role=role)


def _accept_path(message) -> str:
    return re.search(r"https?://[^/\s]+(/invitations/[^/\s]+/)", message.body).group(1)


def _membership(account, user) -> Membership:
    return Membership.objects.get(account=account, user=user)


def _actions(account) -> list[str]:
    return list(AuditEvent.objects.filter(account=account).order_by("pk").values_list("action", flat=True))


# Inviting ---------------------------------------------------------------------------------------


def test_an_invitation_emails_a_link_in_the_inviters_language_and_tells_the_owners(account, owner, emails):
    invitation, sent = emails(lambda: _invite(account, owner))
    assert invitation.expires_at == _about(days=7)
    [invitation_email] = [m for m in sent if m.to == ["new@acme.example"]]
    assert invitation_email.subject == "You are invited to join Acme in the billing console"
    assert "Olga invited you to join Acme in the billing console as Billing." in invitation_email.body
    assert _accept_path(invitation_email) in invitation_email.alternatives[0][0]
    [notice] = [m for m in sent if m.to == ["olga@acme.example"]]
    assert "new@acme.example was invited to join as Billing." in " ".join(notice.body.split())
    event = AuditEvent.objects.get(action=AuditEvent.Action.MEMBER_INVITED)
    assert (event.actor, event.after) == (owner, {"member": "new@acme.example", "role": "billing"})
    # The outbox (shown in admin) holds no working link: it is made when the email is sent.
    stored = SentEmail.objects.get(kind=SentEmail.Kind.INVITATION)
    assert members.invitation_token(invitation.pk) not in str(stored.context)


def test_an_invitation_in_japanese(account, owner, emails):
    with translation.override("ja"):
        _invitation, sent = emails(lambda: _invite(account, owner, role=Membership.Role.VIEWER))
    [invitation_email] = [m for m in sent if m.to == ["new@acme.example"]]
    assert "Acme" in invitation_email.subject and "招待" in invitation_email.subject
    assert "閲覧者" in invitation_email.body
    assert "/invitations/" in invitation_email.body


def test_only_owners_invite(account, owner, billing, viewer):
    for user in (billing, viewer):
        with pytest.raises(PermissionDenied):
            _invite(account, user)
    assert not Invitation.objects.exists()


def test_a_member_cannot_be_invited_again(account, owner, viewer):
    with pytest.raises(members.MemberChangeError):
        _invite(account, owner, email="VIC@acme.example")


def test_a_new_invitation_for_the_same_address_replaces_the_pending_one(account, owner):
    first = _invite(account, owner)
    second = _invite(account, owner, role=Membership.Role.OWNER)
    first.refresh_from_db()
    assert first.canceled_at is not None and second.is_pending
    assert "canceled" in members.invitation_refusal(first)


# Accepting --------------------------------------------------------------------------------------


def test_an_existing_user_signed_in_as_the_invited_address_accepts(client, account, owner, emails):
    invitee = UserFactory(username="nina", email="New@Acme.example")
    _invitation, sent = emails(lambda: _invite(account, owner))
    path = _accept_path(next(m for m in sent if m.to == ["new@acme.example"]))
    client.force_login(invitee)
    assert "Accept the invitation" in client.get(path).content.decode()
    _response, notices = emails(lambda: client.post(path))
    assert _membership(account, invitee).role == Membership.Role.BILLING
    assert client.session["current_account_id"] == account.pk
    assert [m.to for m in notices] == [["olga@acme.example"]]
    assert "New@Acme.example accepted an invitation and joined as Billing." in " ".join(
        notices[0].body.split()
    )
    assert _actions(account)[-1] == AuditEvent.Action.MEMBER_JOINED


def test_signed_out_with_a_user_already_asks_to_sign_in_first(client, account, owner):
    UserFactory(username="nina", email="new@acme.example")
    invitation = _invite(account, owner)
    path = f"/invitations/{members.invitation_token(invitation.pk)}/"
    page = client.get(path).content.decode()
    assert "Sign in to accept the invitation" in page and "next=" in page
    assert client.post(path).status_code == 200
    assert not Membership.objects.filter(account=account, user__username="nina").exists()


def test_signed_in_as_someone_else_is_refused(client, account, owner):
    invitation = _invite(account, owner)
    path = f"/invitations/{members.invitation_token(invitation.pk)}/"
    intruder = UserFactory(username="mallory", email="mallory@example.com")
    client.force_login(intruder)
    assert "You are signed in as mallory" in client.get(path).content.decode()
    response = client.post(path)
    assert response.status_code == 400
    assert not Membership.objects.filter(user=intruder).exists()
    invitation.refresh_from_db()
    assert invitation.accepted_at is None
    with pytest.raises(members.MemberChangeError):
        members.invitation_accept(invitation=invitation, user=intruder)


def test_a_new_person_chooses_a_password_and_is_signed_in(client, account, owner):
    invitation = _invite(account, owner)
    path = f"/invitations/{members.invitation_token(invitation.pk)}/"
    assert 'name="password1"' in client.get(path).content.decode()
    mismatch = client.post(path, {"password1": "a-Long-passphrase-1", "password2": "another-one-2"})
    assert mismatch.status_code == 400
    weak = client.post(path, {"password1": "123", "password2": "123"})
    assert weak.status_code == 400 and not get_user_model().objects.filter(email="new@acme.example").exists()
    response = client.post(path, {"password1": "a-Long-passphrase-1", "password2": "a-Long-passphrase-1"})
    assert response.status_code == 302
    user = get_user_model().objects.get(email="new@acme.example")
    assert user.username == "new@acme.example" and user.check_password("a-Long-passphrase-1")
    assert _membership(account, user).role == Membership.Role.BILLING
    assert client.get("/").context["user"] == user  # signed in


def test_an_expired_invitation_is_refused(client, account, owner):
    invitation = _invite(account, owner)
    invitee = UserFactory(username="nina", email="new@acme.example")
    path = f"/invitations/{members.invitation_token(invitation.pk)}/"
    client.force_login(invitee)
    with time_machine.travel(timezone.now() + datetime.timedelta(days=7, minutes=1)):
        page = client.get(path)
        assert page.status_code == 410
        assert "This invitation has expired." in page.content.decode()
        assert client.post(path).status_code == 410
        with pytest.raises(members.MemberChangeError, match="expired"):
            members.invitation_accept(invitation=invitation, user=invitee)
    assert not Membership.objects.filter(user=invitee).exists()


def test_the_expiry_is_a_setting(account, owner, settings):
    settings.INVITATION_EXPIRY_DAYS = 2
    invitation = _invite(account, owner)
    assert invitation.expires_at == _about(days=2)


def test_a_used_invitation_is_refused(client, account, owner):
    invitation = _invite(account, owner)
    invitee = UserFactory(username="nina", email="new@acme.example")
    path = f"/invitations/{members.invitation_token(invitation.pk)}/"
    client.force_login(invitee)
    assert client.post(path).status_code == 302
    again = client.post(path)
    assert again.status_code == 410
    assert "already been used" in again.content.decode()
    # Removed since, the member cannot come back with the old link either.
    members.member_remove(membership=_membership(account, invitee), actor=owner)
    assert client.post(path).status_code == 410
    assert not Membership.objects.filter(user=invitee).exists()
    assert _actions(account).count(AuditEvent.Action.MEMBER_JOINED) == 1


def test_a_canceled_invitation_is_refused(client, account, owner):
    invitation = _invite(account, owner)
    assert members.invitation_cancel(invitation=invitation, actor=owner)
    assert not members.invitation_cancel(invitation=invitation, actor=owner)
    client.force_login(UserFactory(username="nina", email="new@acme.example"))
    response = client.post(f"/invitations/{members.invitation_token(invitation.pk)}/")
    assert response.status_code == 410
    assert _actions(account).count(AuditEvent.Action.INVITATION_CANCELED) == 1


@pytest.mark.parametrize("token", ["1", "1:forged", "nothing-at-all"])
def test_a_link_we_did_not_sign_is_a_404(client, account, owner, token):
    _invite(account, owner)
    assert client.get(f"/invitations/{token}/").status_code == 404


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_accepts_at_once_join_once(account, owner):
    invitation = _invite(account, owner)
    invitee = UserFactory(username="nina", email="new@acme.example")
    barrier, outcomes = threading.Barrier(2), []

    def accept():
        try:
            barrier.wait()
            members.invitation_accept(invitation=Invitation.objects.get(pk=invitation.pk), user=invitee)
            outcomes.append("joined")
        except members.MemberChangeError:
            outcomes.append("refused")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=accept) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["joined", "refused"]
    assert Membership.objects.filter(account=account, user=invitee).count() == 1
    assert _actions(account).count(AuditEvent.Action.MEMBER_JOINED) == 1


# Roles and removal ------------------------------------------------------------------------------


def test_an_owner_changes_a_role_and_the_owners_and_the_member_are_told(account, owner, viewer, emails):
    ProfileFactory(user=viewer, language="ja")
    membership, sent = emails(
        lambda: members.member_set_role(
            membership=_membership(account, viewer), actor=owner, role=Membership.Role.BILLING
        )
    )
    assert membership.role == _membership(account, viewer).role == Membership.Role.BILLING
    event = AuditEvent.objects.get(action=AuditEvent.Action.MEMBER_ROLE_CHANGED)
    assert event.before == {"member": "vic@acme.example", "role": "viewer"}
    assert event.after == {"member": "vic@acme.example", "role": "billing"}
    by_address = {address: m for m in sent for address in m.to}
    assert set(by_address) == {"olga@acme.example", "vic@acme.example"}
    english = " ".join(by_address["olga@acme.example"].body.split())
    assert "The role of vic@acme.example changed from Viewer to Billing." in english
    assert "Olga (olga@acme.example)" in english
    assert "請求担当" in by_address["vic@acme.example"].body  # in the member's own language


def test_an_owner_removes_a_member(account, owner, billing, emails):
    _result, sent = emails(
        lambda: members.member_remove(membership=_membership(account, billing), actor=owner)
    )
    assert not Membership.objects.filter(account=account, user=billing).exists()
    event = AuditEvent.objects.get(action=AuditEvent.Action.MEMBER_REMOVED)
    assert event.before == {"member": "bea@acme.example", "role": "billing"}
    assert {a for m in sent for a in m.to} == {"olga@acme.example", "bea@acme.example"}


def test_the_last_owner_can_be_neither_demoted_nor_removed(account, owner, viewer):
    membership = _membership(account, owner)
    with pytest.raises(members.MemberChangeError, match="at least one owner"):
        members.member_set_role(membership=membership, actor=owner, role=Membership.Role.VIEWER)
    with pytest.raises(members.MemberChangeError, match="at least one owner"):
        members.member_remove(membership=membership, actor=owner)
    assert _membership(account, owner).role == Membership.Role.OWNER
    assert not AuditEvent.objects.filter(account=account).exists()


def test_with_a_second_owner_an_owner_may_step_down(account, owner, viewer):
    members.member_set_role(membership=_membership(account, viewer), actor=owner, role=Membership.Role.OWNER)
    members.member_set_role(membership=_membership(account, owner), actor=owner, role=Membership.Role.VIEWER)
    assert _membership(account, owner).role == Membership.Role.VIEWER
    # No longer an owner, they cannot change anyone.
    with pytest.raises(PermissionDenied):
        members.member_remove(membership=_membership(account, viewer), actor=owner)


def test_billing_members_and_viewers_change_no_one(account, owner, billing, viewer):
    for actor in (billing, viewer):
        with pytest.raises(PermissionDenied):
            members.member_set_role(membership=_membership(account, viewer), actor=actor, role="owner")
        with pytest.raises(PermissionDenied):
            members.member_remove(membership=_membership(account, owner), actor=actor)
    assert _membership(account, viewer).role == Membership.Role.VIEWER


def test_another_accounts_member_is_not_found(account, owner):
    stranger = MembershipFactory(role=Membership.Role.VIEWER)
    stranger.account = account  # as a forged form would name it
    with pytest.raises(Http404):
        members.member_remove(membership=stranger, actor=owner)
    assert Membership.objects.filter(pk=stranger.pk).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_demotions_leave_an_owner(account, owner):
    second = UserFactory(username="otto", email="otto@acme.example")
    MembershipFactory(account=account, user=second, role=Membership.Role.OWNER)
    barrier, outcomes = threading.Barrier(2), []

    def demote(user):
        try:
            barrier.wait()
            members.member_set_role(
                membership=_membership(account, user), actor=owner, role=Membership.Role.VIEWER
            )
            outcomes.append("demoted")
        except (members.MemberChangeError, PermissionDenied):
            # Refused as the last owner, or, when the owner demoted themselves first, because the
            # actor is no longer an owner: either way the second change does not happen.
            outcomes.append("refused")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=demote, args=(user,)) for user in (owner, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["demoted", "refused"]
    assert Membership.objects.filter(account=account, role=Membership.Role.OWNER).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_owners_removing_each_other_at_once_leave_one(account, owner):
    second = UserFactory(username="otto", email="otto@acme.example")
    MembershipFactory(account=account, user=second, role=Membership.Role.OWNER)
    barrier, outcomes = threading.Barrier(2), []

    def remove(actor, target):
        try:
            barrier.wait()
            members.member_remove(membership=_membership(account, target), actor=actor)
            outcomes.append("removed")
        except (members.MemberChangeError, PermissionDenied, Membership.DoesNotExist):
            outcomes.append("refused")
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=remove, args=(owner, second)),
        threading.Thread(target=remove, args=(second, owner)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused", "removed"]
    assert Membership.objects.filter(account=account, role=Membership.Role.OWNER).count() == 1


def test_an_existing_user_gets_the_invitation_in_their_own_language(account, owner, emails):
    ProfileFactory(user=UserFactory(username="nina", email="new@acme.example"), language="ja")
    _invitation, sent = emails(lambda: _invite(account, owner))
    [invitation_email] = [m for m in sent if m.to == ["new@acme.example"]]
    assert "招待" in invitation_email.subject
