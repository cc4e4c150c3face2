from django.db import transaction

from .models import Account, AuditEvent


def actor_label_for(user) -> str:
    if user is None:
        return "system"
    label = user.get_username()
    return f"staff: {label}" if user.is_staff else label


def _client_ip(request) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def audit_event(
    *,
    account: Account,
    action: str,
    actor=None,
    actor_label: str = "",
    obj=None,
    before=None,
    after=None,
    request=None,
) -> AuditEvent:
    """An unsaved audit event: ``audit_record`` saves one, a batch of changes bulk-creates many."""
    return AuditEvent(
        account=account,
        actor=actor if actor is not None and actor.is_authenticated else None,
        actor_label=actor_label or actor_label_for(actor),
        action=action,
        object_type=obj._meta.model_name if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        before=before,
        after=after,
        ip_address=_client_ip(request),
        user_agent=(request.META.get("HTTP_USER_AGENT", "")[:300] if request is not None else ""),
    )


def audit_record(**fields) -> AuditEvent:
    """Write an audit event (see ``audit_event`` for the fields). Call it inside the transaction
    that makes the change it records."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record must run in the transaction that makes the change")
    event = audit_event(**fields)
    event.save(force_insert=True)
    return event


def account_set_status(*, account: Account, status: str, actor_label: str, reason: str = "") -> bool:
    """Change an account's status with an audit event; True if it changed. Runs in the caller's
    transaction."""
    updated = Account.objects.filter(pk=account.pk).exclude(status=status).update(status=status)
    if updated:
        audit_record(
            account=account,
            action=AuditEvent.Action.ACCOUNT_STATUS,
            actor_label=actor_label,
            obj=account,
            before={"status": account.status},
            after={"status": status, "reason": reason},
        )
        account.status = status
    return bool(updated)
