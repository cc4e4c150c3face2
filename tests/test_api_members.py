"""Members and invitations over the API: the console's rules, scoped to the caller's account."""

import pytest
from django.core import mail
from rest_framework.test import APIClient

from accounts import members
from accounts.models import AuditEvent, Invitation, Membership
from tests.factories import AccountFactory, MembershipFactory, TokenFactory

pytestmark = pytest.mark.django_db


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


def _api(membership) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {TokenFactory(user=membership.user).key}")
    return api


def test_every_member_lists_the_members(owner, viewer):
    api = _api(viewer)
    body = api.get("/api/members/").json()
    assert [(m["id"], m["username"], m["role"]) for m in body["results"]] == [
        (owner.pk, "olga", "owner"),
        (viewer.pk, "vic", "viewer"),
    ]
    assert api.get(f"/api/members/{owner.pk}/").json()["email"] == "olga@example.com"


def test_an_owner_invites_lists_and_cancels(owner, django_capture_on_commit_callbacks):
    api = _api(owner)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            "/api/invitations/", {"email": "new@acme.example", "role": "billing"}, format="json"
        )
    assert response.status_code == 201, response.content
    created = response.json()
    assert (created["email"], created["role"], created["invited_by"]) == (
        "new@acme.example",
        "billing",
        "olga",
    )
    assert ["new@acme.example"] in [m.to for m in mail.outbox]
    assert [i["id"] for i in api.get("/api/invitations/").json()["results"]] == [created["id"]]
    assert api.delete(f"/api/invitations/{created['id']}/").status_code == 204
    assert api.get("/api/invitations/").json()["results"] == []
    assert api.get(f"/api/invitations/{created['id']}/").status_code == 404


def test_an_owner_changes_a_role_and_removes_a_member(owner, viewer, billing):
    api = _api(owner)
    response = api.patch(f"/api/members/{viewer.pk}/", {"role": "billing"}, format="json")
    assert response.status_code == 200 and response.json()["role"] == "billing"
    assert api.delete(f"/api/members/{billing.pk}/").status_code == 204
    assert not Membership.objects.filter(pk=billing.pk).exists()
    assert AuditEvent.objects.filter(action=AuditEvent.Action.MEMBER_REMOVED).count() == 1


def test_the_last_owner_is_protected(owner):
    api = _api(owner)
    demote = api.patch(f"/api/members/{owner.pk}/", {"role": "viewer"}, format="json")
    assert demote.status_code == 400
    assert "at least one owner" in demote.json()["detail"]
    assert api.delete(f"/api/members/{owner.pk}/").status_code == 400
    owner.refresh_from_db()
    assert owner.role == "owner"


@pytest.mark.parametrize("who", ["viewer", "billing"])
def test_billing_members_and_viewers_only_read(owner, viewer, billing, who):
    api = _api({"viewer": viewer, "billing": billing}[who])
    assert (
        api.post("/api/invitations/", {"email": "x@acme.example", "role": "owner"}, format="json").status_code
        == 403
    )
    assert api.patch(f"/api/members/{viewer.pk}/", {"role": "owner"}, format="json").status_code == 403
    assert api.delete(f"/api/members/{owner.pk}/").status_code == 403
    invitation = members.invitation_create(
        account=owner.account, actor=owner.user, email="n@acme.example", role="viewer"
    )
    assert api.get("/api/invitations/").status_code == 200
    assert api.delete(f"/api/invitations/{invitation.pk}/").status_code == 403
    assert Membership.objects.filter(account=owner.account).count() == 3
    assert Invitation.objects.get().is_pending


def test_another_accounts_members_and_invitations_are_404s(owner):
    stranger = MembershipFactory(role=Membership.Role.OWNER)
    invitation = members.invitation_create(
        account=stranger.account, actor=stranger.user, email="n@other.example", role="viewer"
    )
    api = _api(owner)
    assert api.get(f"/api/members/{stranger.pk}/").status_code == 404
    assert api.patch(f"/api/members/{stranger.pk}/", {"role": "viewer"}, format="json").status_code == 404
    assert api.delete(f"/api/members/{stranger.pk}/").status_code == 404
    assert api.delete(f"/api/invitations/{invitation.pk}/").status_code == 404
    assert stranger.pk not in {m["id"] for m in api.get("/api/members/").json()["results"]}
    assert api.get("/api/invitations/").json()["results"] == []
    assert Membership.objects.filter(pk=stranger.pk).exists()
    assert Invitation.objects.get(pk=invitation.pk).is_pending


def test_a_bad_role_or_address_is_a_400(owner):
    api = _api(owner)
    assert (
        api.post("/api/invitations/", {"email": "nope", "role": "viewer"}, format="json").status_code == 400
    )
    assert (
        api.post("/api/invitations/", {"email": "a@b.example", "role": "admin"}, format="json").status_code
        == 400
    )
    assert api.patch(f"/api/members/{owner.pk}/", {"role": 1}, format="json").status_code == 400
