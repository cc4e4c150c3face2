"""Who may act for an account: owners invite people by email to a role, change roles and remove
members; the invited accept through a signed, expiring, single-use link.

Every change locks the account's row first, so changes to one account's members happen one after
another: two owners demoting each other at the same moment cannot leave the account without an
owner. Each change is audited, and the owners are told (``accounts.signals``).
"""

import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from .models import Account, AuditEvent, Invitation, Membership
from .services import audit_record
from .signals import account_access_changed_on_commit, invitation_created_on_commit

_TOKEN_SALT = "accounts.invitation"


class MemberChangeError(ValidationError):
    """The change to the account's members was refused; nothing changed."""


# Invitation links -------------------------------------------------------------------------------


def invitation_token(invitation_id: int) -> str:
    """The invitation's id, signed: the link proves it came from us without a secret stored in the
    database (or in the stored email). Expiry and single use are the row's, checked on accepting."""
    return signing.Signer(salt=_TOKEN_SALT).sign(str(invitation_id))


def invitation_from_token(token: str) -> Invitation | None:
    """The invitation a link names, or None if the link was not made by us (or names no invitation)."""
    try:
        invitation_id = int(signing.Signer(salt=_TOKEN_SALT).unsign(token))
    except (signing.BadSignature, ValueError):
        return None
    return Invitation.objects.select_related("account", "invited_by").filter(pk=invitation_id).first()


def invitation_refusal(invitation: Invitation) -> str:
    """Why the invitation cannot be accepted, in words for the person holding the link; "" if it can."""
    if invitation.accepted_at is not None:
        return _("This invitation has already been used. Sign in to open the account.")
    if invitation.canceled_at is not None:
        return _("This invitation was canceled. Ask an owner of the account for a new one.")
    if invitation.expires_at <= timezone.now():
        return _("This invitation has expired. Ask an owner of the account for a new one.")
    return ""


def pending_invitations(account: Account):
    return Invitation.objects.filter(
        account=account, accepted_at=None, canceled_at=None, expires_at__gt=timezone.now()
    ).select_related("invited_by")


# Checks every change makes, under the account's row lock ----------------------------------------


def _lock_account(account: Account) -> Account:
    return Account.objects.select_for_update().get(pk=account.pk)


def _require_owner(account: Account, actor) -> None:
    """Read under the account's lock: an owner demoted a moment ago may no longer manage members."""
    if (
        actor is None
        or not Membership.objects.filter(account=account, user=actor, role=Membership.Role.OWNER).exists()
    ):
        raise PermissionDenied(_("Only owners can change who is a member of the account."))


def _require_another_owner(account: Account, membership: Membership) -> None:
    if membership.role != Membership.Role.OWNER:
        return
    others = Membership.objects.filter(account=account, role=Membership.Role.OWNER).exclude(pk=membership.pk)
    if not others.exists():
        raise MemberChangeError(_("An account needs at least one owner. Make another member an owner first."))


def member_label(user) -> str:
    return user.email or user.get_username()


def _role(value: str) -> str:
    if value not in Membership.Role.values:
        raise MemberChangeError({"role": [_("Choose a role: owner, billing or viewer.")]})
    return value


# Invitations ------------------------------------------------------------------------------------


@transaction.atomic
def invitation_create(
    *, account: Account, actor, email: str, role: str, request=None, language: str | None = None
) -> Invitation:
    """Invite ``email`` to join ``account`` as ``role`` and email them the link, written in
    ``language`` (default: the active one, the inviter's). A pending invitation for the same address
    is replaced: only the newest link works."""
    email, role = (email or "").strip(), _role(role)
    account = _lock_account(account)
    _require_owner(account, actor)
    if Membership.objects.filter(account=account, user__email__iexact=email).exists():
        raise MemberChangeError({"email": [_("%(email)s is already a member.") % {"email": email}]})
    now = timezone.now()
    Invitation.objects.filter(
        account=account, email__iexact=email, accepted_at=None, canceled_at=None
    ).update(canceled_at=now)
    invitation = Invitation.objects.create(
        account=account,
        email=email,
        role=role,
        invited_by=actor,
        expires_at=now + datetime.timedelta(days=settings.INVITATION_EXPIRY_DAYS),
    )
    event = audit_record(
        account=account,
        action=AuditEvent.Action.MEMBER_INVITED,
        actor=actor,
        obj=invitation,
        after={"member": email, "role": role},
        request=request,
    )
    account_access_changed_on_commit(event=event, request=request)
    invitation_created_on_commit(invitation=invitation, language=language or translation.get_language())
    return invitation


@transaction.atomic
def invitation_cancel(*, invitation: Invitation, actor, request=None) -> bool:
    """Make a pending invitation's link stop working; False if it was no longer pending."""
    account = _lock_account(invitation.account)
    _require_owner(account, actor)
    canceled = Invitation.objects.filter(
        pk=invitation.pk, account=account, accepted_at=None, canceled_at=None
    ).update(canceled_at=timezone.now())
    if canceled:
        event = audit_record(
            account=account,
            action=AuditEvent.Action.INVITATION_CANCELED,
            actor=actor,
            obj=invitation,
            before={"member": invitation.email, "role": invitation.role},
            request=request,
        )
        account_access_changed_on_commit(event=event, request=request)
    return bool(canceled)


def invitation_is_for(invitation: Invitation, user) -> bool:
    return bool(user.is_authenticated and user.email and user.email.lower() == invitation.email.lower())


@transaction.atomic
def invitation_accept(*, invitation: Invitation, user, request=None) -> Membership:
    """Join the account as the invitation's role, signed in as the user it was sent to.

    The invitation is claimed with one conditional update: of two requests with the same link (a
    double click, a forwarded email), exactly one gets past it; the other is refused.
    """
    if not invitation_is_for(invitation, user):
        raise MemberChangeError(
            _("This invitation is for %(email)s. Sign in with that address to accept it.")
            % {"email": invitation.email}
        )
    account = _lock_account(invitation.account)
    now = timezone.now()
    claimed = Invitation.objects.filter(
        pk=invitation.pk, accepted_at=None, canceled_at=None, expires_at__gt=now
    ).update(accepted_at=now, accepted_by=user)
    if not claimed:
        invitation.refresh_from_db()
        raise MemberChangeError(invitation_refusal(invitation) or _("This invitation cannot be used."))
    if Membership.objects.filter(account=account, user=user).exists():
        raise MemberChangeError(_("You are already a member of %(name)s.") % {"name": account.name})
    membership = Membership.objects.create(account=account, user=user, role=invitation.role)
    event = audit_record(
        account=account,
        action=AuditEvent.Action.MEMBER_JOINED,
        actor=user,
        obj=membership,
        after={"member": member_label(user), "role": membership.role},
        request=request,
    )
    account_access_changed_on_commit(event=event, request=request)
    return membership


@transaction.atomic
def invitation_accept_new_user(*, invitation: Invitation, password: str, request=None) -> Membership:
    """Create the invited person's user (their email is their username) and accept for them.

    The caller checks the password against the password validators first. Under the account's row
    lock, so of two such requests at once the second finds the user made and is refused."""
    _lock_account(invitation.account)
    invitation.refresh_from_db()
    if invitation_refusal(invitation):
        raise MemberChangeError(invitation_refusal(invitation))
    User = get_user_model()
    if (
        User.objects.filter(email__iexact=invitation.email).exists()
        or User.objects.filter(username__iexact=invitation.email).exists()
    ):
        raise MemberChangeError(_("You already have a user here. Sign in to accept the invitation."))
    user = User(username=invitation.email, email=invitation.email)
    user.set_password(password)
    user.save()
    return invitation_accept(invitation=invitation, user=user, request=request)


# Roles and removal ------------------------------------------------------------------------------


def _locked_membership(account: Account, membership: Membership) -> Membership:
    try:
        return Membership.objects.select_related("user").get(pk=membership.pk, account=account)
    except Membership.DoesNotExist:  # removed meanwhile
        raise Http404 from None


@transaction.atomic
def member_set_role(*, membership: Membership, actor, role: str, request=None) -> Membership:
    """Give a member another role. The last owner cannot be demoted (MemberChangeError)."""
    role = _role(role)
    account = _lock_account(membership.account)
    _require_owner(account, actor)
    membership = _locked_membership(account, membership)
    if membership.role == role:
        return membership
    if role != Membership.Role.OWNER:
        _require_another_owner(account, membership)
    before = membership.role
    Membership.objects.filter(pk=membership.pk).update(role=role)
    membership.role = role
    label = member_label(membership.user)
    event = audit_record(
        account=account,
        action=AuditEvent.Action.MEMBER_ROLE_CHANGED,
        actor=actor,
        obj=membership,
        before={"member": label, "role": before},
        after={"member": label, "role": role},
        request=request,
    )
    account_access_changed_on_commit(event=event, request=request, notify_also=[membership.user])
    return membership


@transaction.atomic
def member_remove(*, membership: Membership, actor, request=None) -> None:
    """Take a member out of the account. The last owner cannot be removed (MemberChangeError)."""
    account = _lock_account(membership.account)
    _require_owner(account, actor)
    membership = _locked_membership(account, membership)
    _require_another_owner(account, membership)
    event = audit_record(
        account=account,
        action=AuditEvent.Action.MEMBER_REMOVED,
        actor=actor,
        obj=membership,
        before={"member": member_label(membership.user), "role": membership.role},
        request=request,
    )
    membership.delete()
    account_access_changed_on_commit(event=event, request=request, notify_also=[membership.user])
