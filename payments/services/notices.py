"""What every change to an account's methods or charge order shares: the account's lock, which
serialises them, the order's rows, the snapshot of a method its audit event records, and the
security notice that tells the owners."""

import datetime

from django.conf import settings

from accounts.models import Account, AuditEvent
from notifications.models import SentEmail
from notifications.services import (
    OWNER_ROLES,
    actor_context,
    notification_batch,
    recipients_for,
    request_channel,
)

from ..models import ChargeOrderEntry, PaymentMethod


def charge_order_ids(*, account: Account) -> list[int]:
    return list(
        ChargeOrderEntry.objects.filter(account=account)
        .order_by("position")
        .values_list("method_id", flat=True)
    )


def method_snapshot(method: PaymentMethod) -> dict:
    return {
        "id": method.pk,
        "kind": method.kind,
        "label": method.label,
        "exp": f"{method.exp_month:02d}/{method.exp_year}" if method.exp_month else None,
        "status": method.status,
    }


def lock_account(account: Account) -> Account:
    # Serialises every change to one account's methods, so two concurrent edits cannot interleave.
    return Account.objects.select_for_update().get(pk=account.pk)


def security_notice(
    *, account: Account, event: AuditEvent, actor, request, order_before: list[int] | None = None
) -> None:
    """Tell the owners who changed what, when and from where, so a hijacked session cannot quietly
    redirect payments. ``order_before`` is the charge order before the change, if it could change.
    Labels are taken now: the email must say what the order was, whatever happens to it later.

    One member's changes within SECURITY_NOTICE_WINDOW_SECONDS of their first make one notice,
    listing each (twelve reorders in three minutes are one email, not twelve); it is sent when the
    window closes. The account is locked (``lock_account``), which serialises the batch."""
    order_after = charge_order_ids(account=account)
    order_before = order_after if order_before is None else order_before
    labels = {m.pk: m.label for m in PaymentMethod.objects.filter(pk__in={*order_before, *order_after})}
    snapshot_before, snapshot_after = event.before or {}, event.after or {}
    member = getattr(actor, "pk", None) if actor is not None and actor.is_authenticated else None
    notification_batch(
        account=account,
        kind=SentEmail.Kind.SECURITY_NOTICE,
        batch_key=f"security:{account.pk}:{member or 'system'}",
        event_key=f"security:{event.pk}",
        recipients=recipients_for(account=account, kind=SentEmail.Kind.SECURITY_NOTICE, roles=OWNER_ROLES),
        window=datetime.timedelta(seconds=settings.SECURITY_NOTICE_WINDOW_SECONDS),
        shared={"actor": actor_context(actor)},
        change={
            "action": event.action,
            "method": snapshot_after.get("label") or snapshot_before.get("label") or "",
            "expiry_before": snapshot_before.get("exp") or "",
            "expiry_after": snapshot_after.get("exp") or "",
            "order_changed": order_before != order_after,
            "order_before": [{"method": labels[m], "position": n} for n, m in enumerate(order_before, 1)],
            "order_after": [{"method": labels[m], "position": n} for n, m in enumerate(order_after, 1)],
            # To the second: the stored context, shown in admin, holds no long runs of digits.
            "occurred_at": event.created_at.replace(microsecond=0).isoformat(),
            "ip_address": event.ip_address or "",
            "via": request_channel(request),
        },
    )


def write_order(*, account: Account, method_ids: list[int]) -> None:
    ChargeOrderEntry.objects.filter(account=account).delete()
    ChargeOrderEntry.objects.bulk_create(
        ChargeOrderEntry(account=account, method_id=method_id, position=position)
        for position, method_id in enumerate(method_ids, start=1)
    )
