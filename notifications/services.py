"""Customer emails: recorded in the transaction that causes them, sent once, after commit, to each
recipient in their own language."""

import dataclasses
import datetime
import logging
import zoneinfo
from collections.abc import Mapping

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone, translation

from accounts.models import Account, Membership
from core.bulk import insert_rows, update_rows

from . import rendering
from .models import SentEmail
from .site import current_site_url

logger = logging.getLogger(__name__)

OWNER_ROLES = (Membership.Role.OWNER,)
BILLING_ROLES = (Membership.Role.OWNER, Membership.Role.BILLING)


def email_language(code: str | None) -> str:
    """A language the product speaks: ``code`` if it is one, else LANGUAGE_CODE."""
    return code if code in dict(settings.LANGUAGES) else settings.LANGUAGE_CODE


def _profile_language(user) -> str:
    try:
        return user.profile.language
    except ObjectDoesNotExist:
        return ""


def actor_context(user) -> dict | None:
    """Who made a change, for a security notice: None for the system (settlement, a script)."""
    if user is None or not user.is_authenticated:
        return None
    return {"name": user.get_full_name() or user.get_username(), "email": user.email, "staff": user.is_staff}


def request_channel(request) -> str:
    """Where a change came from: "api", "admin" or "console"; "" without a request (a command)."""
    if request is None:
        return ""
    path = getattr(request, "path", "") or ""
    if path.startswith("/api/"):
        return "api"
    return "admin" if path.startswith("/admin/") else "console"


def _members_by_account(account_ids) -> dict[int, list[Membership]]:
    members: dict[int, list[Membership]] = {}
    for member in Membership.objects.filter(
        account_id__in=set(account_ids), user__is_active=True
    ).select_related("user__profile"):
        members.setdefault(member.account_id, []).append(member)
    return members


def _profile_time_zone(user) -> str:
    """The member's saved time zone, or "" for none (or one this machine does not know)."""
    try:
        zone = user.profile.time_zone
        if zone:
            zoneinfo.ZoneInfo(zone)
    except (ObjectDoesNotExist, zoneinfo.ZoneInfoNotFoundError, ValueError):
        return ""
    return zone


def _time_zones(recipients, members) -> dict[str, str]:
    """``{address: time zone}`` for the recipients who chose one in their settings."""
    zone_of = {}
    for member in members:
        if member.user.email and (zone := _profile_time_zone(member.user)):
            zone_of[member.user.email.lower()] = zone
    return {address: zone_of[address.lower()] for address in recipients if address.lower() in zone_of}


def _recipients(*, account: Account, kind: str, members, roles) -> dict[str, str]:
    optional = kind not in SentEmail.ALWAYS_SENT
    languages, language_of, opted_out = {}, {}, set()
    for member in members:
        address = member.user.email
        if not address:
            continue
        language_of[address.lower()] = email_language(_profile_language(member.user))
        if optional and member.email_opt_out:
            opted_out.add(address.lower())
        elif member.role in roles:
            languages[address] = language_of[address.lower()]
    if kind != SentEmail.Kind.SECURITY_NOTICE:
        for billing in [account.billing_email, *(account.billing_recipients or [])]:
            if billing and billing.lower() not in opted_out:
                languages.setdefault(billing, language_of.get(billing.lower(), settings.LANGUAGE_CODE))
    for address in [a for a in languages if a.lower() in opted_out]:
        del languages[address]  # the same person under two memberships: their "no" wins
    return dict(sorted(languages.items()))


def recipients_for(*, account: Account, kind: str, roles=BILLING_ROLES) -> dict[str, str]:
    """``{address: language}`` for an email of ``kind``: the members in ``roles`` and, except for
    security notices, the account's billing address and its further billing recipients. A member who
    opted out of optional emails gets only security and failed-payment notices, also when their
    address is a billing address."""
    members = _members_by_account([account.pk]).get(account.pk, [])
    return _recipients(account=account, kind=kind, members=members, roles=roles)


@dataclasses.dataclass(frozen=True)
class Notification:
    """One event's email, to be queued: see ``notification_queue``."""

    account: Account
    kind: str
    event_key: str
    context: dict
    recipients: Mapping[str, str] | None = None
    # A batched email (``notification_batch``): its batch, and when its window closes.
    batch_key: str = ""
    deliver_after: datetime.datetime | None = None


def notification_queue(
    *,
    account: Account,
    kind: str,
    event_key: str,
    context: dict,
    recipients: Mapping[str, str] | None = None,
) -> SentEmail | None:
    """Record the email for one event and send it when the current transaction commits.

    ``recipients`` maps each address to its language (default: ``recipients_for``). ``context`` is
    stored as JSON and rendered later, in each recipient's language (see ``rendering.localised``).
    The event key is unique: queuing the same event again (a re-run, a retry) sends nothing.
    """
    notification = Notification(
        account=account, kind=kind, event_key=event_key, context=context, recipients=recipients
    )
    queued = notification_queue_many([notification])
    return queued[0] if queued else None


def notification_queue_many(notifications: list[Notification]) -> list[SentEmail]:
    """``notification_queue`` for many events at once, in a constant number of queries: the
    emails are sent together when the current transaction commits. Returns those queued."""
    if not notifications:
        return []
    members = _members_by_account(n.account.pk for n in notifications)
    known = set(
        SentEmail.objects.filter(event_key__in=[n.event_key for n in notifications]).values_list(
            "event_key", flat=True
        )
    )
    emails = []
    for n in notifications:
        recipients = n.recipients
        if recipients is None:
            recipients = _recipients(
                account=n.account, kind=n.kind, members=members.get(n.account.pk, []), roles=BILLING_ROLES
            )
        if not recipients or n.event_key in known:
            continue
        known.add(n.event_key)
        emails.append(
            SentEmail(
                account=n.account,
                kind=n.kind,
                event_key=n.event_key,
                recipients=sorted(recipients),
                languages={address: email_language(lang) for address, lang in recipients.items()},
                time_zones=_time_zones(recipients, members.get(n.account.pk, [])),
                context=n.context,
                batch_key=n.batch_key,
                deliver_after=n.deliver_after,
                site_url=current_site_url(),
            )
        )
    if not emails:
        return []
    try:
        with transaction.atomic():
            insert_rows(emails)
    except IntegrityError:
        # Another process queued one of these events meanwhile: queue the rest one by one.
        emails = [email for email in emails if _create_unless_queued(email)]
    # A batched email waits for its window to close (``notification_deliver_due``).
    ids = [email.pk for email in emails if email.deliver_after is None]
    if ids:
        transaction.on_commit(lambda: notification_deliver_many(email_ids=ids), robust=True)
    return emails


def notification_batch(
    *,
    account: Account,
    kind: str,
    batch_key: str,
    event_key: str,
    change: dict,
    shared: dict,
    window: datetime.timedelta,
    recipients: Mapping[str, str] | None = None,
) -> SentEmail | None:
    """Report ``change`` in the email of ``batch_key`` still collecting, or in a new one.

    The email's context is ``shared`` with ``changes``, every change in the order they came. The
    first change starts a window of ``window``; the changes of the same batch within it join that
    email, which ``notification_deliver_due`` sends once the window has closed, so the first change
    waits at most ``window``. A change after the window starts a new email. With no window the
    email is sent on commit, as ``notification_queue``'s.

    Call it inside the transaction that makes the change: the change and its place in an email
    commit together or not at all, and nothing waits in memory for a process that may die. The
    caller serialises the batch's changes (payments locks the account), so two changes cannot
    both start an email; the collecting email is locked while a change joins it, and the
    deliverer passes over a locked email until the change that holds it has committed.
    """
    now = timezone.now()
    if window > datetime.timedelta(0):
        collecting = (
            SentEmail.objects.select_for_update()
            .filter(
                account=account,
                kind=kind,
                batch_key=batch_key,
                status=SentEmail.Status.QUEUED,
                deliver_after__gt=now,
            )
            .order_by("pk")
            .first()
        )
        if collecting is not None:
            collecting.context = {**collecting.context, "changes": [*collecting.context["changes"], change]}
            collecting.save(update_fields=["context"])
            return collecting
    notification = Notification(
        account=account,
        kind=kind,
        event_key=event_key,
        context={**shared, "changes": [change]},
        recipients=recipients,
        batch_key=batch_key,
        deliver_after=now + window if window > datetime.timedelta(0) else None,
    )
    queued = notification_queue_many([notification])
    return queued[0] if queued else None


def _create_unless_queued(email: SentEmail) -> bool:
    try:
        with transaction.atomic():
            email.save(force_insert=True)
    except IntegrityError:
        email.pk = None
        return False
    return True


def recipient_groups(email: SentEmail) -> dict[tuple[str, str], list[str]]:
    """The recipients by language and time zone, each group getting one message; the site's
    default language first."""
    groups: dict[tuple[str, str], list[str]] = {}
    for address in email.recipients:
        language = email_language(email.languages.get(address))
        zone = email.time_zones.get(address) or settings.TIME_ZONE
        groups.setdefault((language, zone), []).append(address)
    return dict(sorted(groups.items(), key=lambda item: (item[0][0] != settings.LANGUAGE_CODE, item[0])))


def notification_deliver(*, email_id: int) -> bool:
    """Send a queued email once: one message per language, each rendered in that language.

    Claimed before sending, so two deliverers never both send it.
    """
    return notification_deliver_many(email_ids=[email_id]) == 1


def notification_deliver_due(
    *, now: datetime.datetime | None = None, batch_size: int = 100, stop=None
) -> int:
    """Send every queued email that is due: each batched email whose window has closed, and any
    email queued for sending on commit that was not sent (its process ended first). Returns how
    many were sent. Safe to run in several processes at once: each email is claimed before it is
    sent, and one claimed elsewhere, or still being added to, is passed over."""
    now = now or timezone.now()
    due = Q(deliver_after__isnull=True) | Q(deliver_after__lte=now)
    sent, after = 0, 0
    while stop is None or not stop.is_set():
        ids = list(
            SentEmail.objects.filter(due, status=SentEmail.Status.QUEUED, pk__gt=after)
            .order_by("pk")
            .values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            break
        sent += notification_deliver_many(email_ids=ids)
        after = ids[-1]
    return sent


def notification_deliver_many(*, email_ids) -> int:
    """Send the queued emails among ``email_ids`` (see ``notification_deliver``), claiming them
    together; returns how many were sent."""
    with transaction.atomic():
        emails = list(
            SentEmail.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk__in=list(email_ids), status=SentEmail.Status.QUEUED)
            .select_related("account")
            .order_by("pk")
        )
        if not emails:
            return 0
        now = timezone.now()
        SentEmail.objects.filter(pk__in=[email.pk for email in emails]).update(
            status=SentEmail.Status.SENT, sent_at=now
        )
    sent = []
    for email in emails:
        email.status, email.sent_at, email.subject, email.error = SentEmail.Status.SENT, now, "", ""
        sent_to = []
        try:
            for (language, zone), addresses in recipient_groups(email).items():
                with translation.override(language), timezone.override(zone):
                    rendered = rendering.render_email(
                        kind=email.kind,
                        context=email.context,
                        account_name=email.account.name,
                        account_id=email.account_id,
                        site_url=email.site_url,
                    )
                message = EmailMultiAlternatives(subject=rendered.subject, body=rendered.text, to=addresses)
                message.attach_alternative(rendered.html, "text/html")
                for attachment in rendered.attachments:
                    message.attach(attachment.filename, attachment.content, attachment.mimetype)
                message.send()
                email.subject = email.subject or rendered.subject[:300]
                sent_to.append(f"{language} ({zone})")
        except Exception as exc:
            logger.exception("Sending email %s (%s) failed", email.pk, email.kind)
            error = f"sent in {', '.join(sent_to)}; then: {exc}" if sent_to else str(exc)
            email.status, email.error = SentEmail.Status.FAILED, error[:300]
        else:
            sent.append(email)
    update_rows(emails, ["status", "error", "subject"])
    return len(sent)
