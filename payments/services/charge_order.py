"""The charge order: the primary and its ranked backups, replaced whole or moved one place at a
time, each change audited and told to the owners."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from accounts.models import Account, AuditEvent
from accounts.services import audit_record

from ..models import PaymentMethod
from ..signals import charge_order_changed_on_commit
from .notices import charge_order_ids, lock_account, security_notice, write_order


class ChargeOrderError(ValidationError):
    """The requested charge order was refused whole; ``messages`` says every problem."""


def _validate_order(*, account: Account, method_ids: list[int]) -> None:
    problems = []
    seen = set()
    for method_id in method_ids:
        if method_id in seen:
            problems.append(_("Payment method %(id)s appears more than once.") % {"id": method_id})
        seen.add(method_id)
    methods = {m.pk: m for m in PaymentMethod.objects.filter(account=account, pk__in=seen)}
    for method_id in dict.fromkeys(method_ids):
        method = methods.get(method_id)
        if method is None:
            # Another account's method reads exactly like one that does not exist.
            problems.append(_("Payment method %(id)s does not exist.") % {"id": method_id})
        elif not method.is_active:
            problems.append(_("Payment method %(id)s has been removed.") % {"id": method_id})
    limit = 1 + settings.BILLING_MAX_BACKUPS
    if len(method_ids) > limit:
        problems.append(
            _("A charge order holds a primary and at most %(n)s backups.")
            % {"n": settings.BILLING_MAX_BACKUPS}
        )
    if problems:
        raise ChargeOrderError(problems)


@transaction.atomic
def charge_order_set(*, account: Account, actor, method_ids: list[int], request=None) -> list[int]:
    """Replace the charge order: ``method_ids[0]`` is the primary, the rest are backups in rank.

    Refused whole (ChargeOrderError, nothing changed) if it names a method twice, a removed
    method, another account's method, or more backups than BILLING_MAX_BACKUPS.
    """
    account = lock_account(account)
    method_ids = [int(method_id) for method_id in method_ids]
    _validate_order(account=account, method_ids=method_ids)
    before = charge_order_ids(account=account)
    if before == method_ids:
        return before
    write_order(account=account, method_ids=method_ids)
    event = audit_record(
        account=account,
        action=AuditEvent.Action.ORDER_CHANGED,
        actor=actor,
        before={"order": before},
        after={"order": method_ids},
        request=request,
    )
    charge_order_changed_on_commit(account_id=account.pk)
    security_notice(account=account, event=event, actor=actor, request=request, order_before=before)
    return method_ids


def _reordered(order: list[int], method_id: int, *, to: int) -> list[int]:
    order = [m for m in order if m != method_id]
    order.insert(max(0, min(to, len(order))), method_id)
    return order


def _require_in_order(order: list[int], method_id: int) -> None:
    if method_id not in order:
        raise ChargeOrderError([_("That payment method is not in the charge order.")])


def charge_order_move(*, account: Account, actor, method_id: int, offset: int, request=None) -> list[int]:
    """Move a method ``offset`` places (-1 is "Move up", +1 "Move down")."""
    with transaction.atomic():
        order = charge_order_ids(account=lock_account(account))
        _require_in_order(order, method_id)
        return charge_order_set(
            account=account,
            actor=actor,
            method_ids=_reordered(order, method_id, to=order.index(method_id) + offset),
            request=request,
        )


def charge_order_make_primary(*, account: Account, actor, method_id: int, request=None) -> list[int]:
    with transaction.atomic():
        order = charge_order_ids(account=lock_account(account))
        return charge_order_set(
            account=account, actor=actor, method_ids=_reordered(order, method_id, to=0), request=request
        )


def charge_order_add_backup(*, account: Account, actor, method_id: int, request=None) -> list[int]:
    with transaction.atomic():
        order = charge_order_ids(account=lock_account(account))
        if method_id in order:
            return order
        return charge_order_set(account=account, actor=actor, method_ids=[*order, method_id], request=request)


def charge_order_remove(*, account: Account, actor, method_id: int, request=None) -> list[int]:
    """Take a method out of the charge order but keep it on file."""
    with transaction.atomic():
        order = charge_order_ids(account=lock_account(account))
        _require_in_order(order, method_id)
        return charge_order_set(
            account=account, actor=actor, method_ids=[m for m in order if m != method_id], request=request
        )
