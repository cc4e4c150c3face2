"""Customer emails: recorded in the transaction that causes them, sent once, after commit."""

import logging

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation

from accounts.models import Account, Membership

from .models import SentEmail

logger = logging.getLogger(__name__)

OWNER_ROLES = (Membership.Role.OWNER,)
BILLING_ROLES = (Membership.Role.OWNER, Membership.Role.BILLING)


def recipients_for(*, account: Account, kind: str, roles=BILLING_ROLES) -> list[str]:
    """Addresses for ``kind``: the chosen roles (minus those who opted out of optional emails)
    and, for payment emails, the account's billing address."""
    members = Membership.objects.filter(account=account, role__in=roles).select_related("user")
    if kind not in SentEmail.ALWAYS_SENT:
        members = members.filter(email_opt_out=False)
    addresses = [m.user.email for m in members if m.user.email]
    if kind != SentEmail.Kind.SECURITY_NOTICE and account.billing_email:
        addresses.append(account.billing_email)
    return sorted(set(addresses))


def notification_queue(
    *,
    account: Account,
    kind: str,
    event_key: str,
    context: dict,
    recipients: list[str] | None = None,
) -> SentEmail | None:
    """Record the email for one event and send it when the current transaction commits.

    The event key is unique: queuing the same event again (a re-run, a retry) sends nothing.
    """
    if recipients is None:
        recipients = recipients_for(account=account, kind=kind)
    if not recipients:
        return None
    try:
        with transaction.atomic():
            email = SentEmail.objects.create(
                account=account, kind=kind, event_key=event_key, recipients=recipients, context=context
            )
    except IntegrityError:
        return None
    transaction.on_commit(lambda: notification_deliver(email_id=email.pk))
    return email


def notification_deliver(*, email_id: int) -> bool:
    """Send a queued email once. Claimed before sending, so two deliverers never both send it."""
    claimed = SentEmail.objects.filter(pk=email_id, status=SentEmail.Status.QUEUED).update(
        status=SentEmail.Status.SENT, sent_at=timezone.now()
    )
    if not claimed:
        return False
    email = SentEmail.objects.select_related("account").get(pk=email_id)
    context = {**email.context, "account_name": email.account.name, "site_url": settings.SITE_URL}
    try:
        with translation.override(email.context.get("language") or settings.LANGUAGE_CODE):
            subject = render_to_string(f"notifications/{email.kind}.subject.txt", context).strip()
            text = render_to_string(f"notifications/{email.kind}.txt", context)
            html = render_to_string(f"notifications/{email.kind}.html", context)
        message = EmailMultiAlternatives(subject=subject, body=text, to=email.recipients)
        message.attach_alternative(html, "text/html")
        message.send()
    except Exception as exc:
        logger.exception("Sending email %s (%s) failed", email.pk, email.kind)
        SentEmail.objects.filter(pk=email.pk).update(
            status=SentEmail.Status.FAILED, error=str(exc)[:300], subject=""
        )
        return False
    SentEmail.objects.filter(pk=email.pk).update(subject=subject[:300])
    return True
