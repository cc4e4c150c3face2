"""Emails for what accounts announces (accounts/signals.py), connected in NotificationsConfig.ready()."""

import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from accounts.models import Account, AuditEvent, Invitation
from accounts.signals import account_access_changed, invitation_created

from .models import SentEmail
from .services import (
    OWNER_ROLES,
    _profile_language,
    actor_context,
    email_language,
    notification_batch,
    notification_queue,
    recipients_for,
    request_channel,
)


def _contacts_text(contacts: dict | None) -> str:
    if not contacts:
        return ""
    return ", ".join([contacts.get("billing_email") or "", *(contacts.get("recipients") or [])]).strip(", ")


def account_access_security_notice(sender, *, event: AuditEvent, request=None, notify_also=(), **kwargs):
    """Tell the owners (and a member demoted or removed) who changed the members or billing
    contacts, what, when and from where: a hijacked session must not quietly take an account over
    or redirect its invoices.

    The change joins its author's security notice still collecting (``notification_batch``, as
    payment-method changes do), so one member's changes within the window make one email. A notice
    that also goes to the member it concerns is that member's alone, and is never merged."""
    before, after = event.before or {}, event.after or {}
    contacts = event.action == AuditEvent.Action.BILLING_CONTACTS_CHANGED
    with transaction.atomic():
        # Announced on commit: lock the account again, which serialises the batch as payments does.
        account = Account.objects.select_for_update().get(pk=event.account_id)
        recipients = recipients_for(account=account, kind=SentEmail.Kind.SECURITY_NOTICE, roles=OWNER_ROLES)
        for user in notify_also:
            if user.email and user.is_active:
                recipients.setdefault(user.email, email_language(_profile_language(user)))
        author = event.actor_id or "system"
        notification_batch(
            account=account,
            kind=SentEmail.Kind.SECURITY_NOTICE,
            batch_key=f"security:{account.pk}:{author}" + (f":{event.pk}" if notify_also else ""),
            event_key=f"security:{event.pk}",
            recipients=recipients,
            window=datetime.timedelta(seconds=settings.SECURITY_NOTICE_WINDOW_SECONDS),
            shared={"actor": actor_context(event.actor)},
            change={
                "action": event.action,
                "member": after.get("member") or before.get("member") or "",
                "role_before": before.get("role") or "",
                "role_after": after.get("role") or "",
                "contacts_before": _contacts_text(before) if contacts else "",
                "contacts_after": _contacts_text(after) if contacts else "",
                "order_changed": False,
                "occurred_at": event.created_at.replace(microsecond=0).isoformat(),
                "ip_address": event.ip_address or "",
                "via": request_channel(request),
            },
        )


def _invitee_language(invitation: Invitation, fallback: str) -> str:
    """The language the invited person chose here, if they have a user already; else ``fallback``."""
    user = (
        get_user_model()
        .objects.filter(email__iexact=invitation.email, is_active=True)
        .select_related("profile")
        .first()
    )
    return (_profile_language(user) if user is not None else "") or fallback


def invitation_email(sender, *, invitation: Invitation, language: str, **kwargs):
    """The invitation, to the address invited, in their language if they chose one here, else the
    inviter's. The link is made when the email is sent (``rendering``), from the invitation's id:
    the stored email holds no link."""
    notification_queue(
        account=invitation.account,
        kind=SentEmail.Kind.INVITATION,
        event_key=f"invitation:{invitation.pk}",
        recipients={invitation.email: email_language(_invitee_language(invitation, language))},
        context={
            "invitation_id": invitation.pk,
            "role": invitation.role,
            "inviter": actor_context(invitation.invited_by),
            "expires_at": invitation.expires_at.replace(microsecond=0).isoformat(),
        },
    )


def connect() -> None:
    account_access_changed.connect(
        account_access_security_notice, dispatch_uid="notifications.account_access_security_notice"
    )
    invitation_created.connect(invitation_email, dispatch_uid="notifications.invitation_email")
