"""Writes to payment methods and the charge order.

Tokenisation happens first, outside any transaction (the gateway is remote): in the customer's
browser where the gateway supports it (``payment_method_setup_start`` / ``_finish``), or on the server
for the sandbox's test numbers (``payment_method_tokenize_card`` …, then ``payment_method_keep``).
The change, its audit event and the security notice then commit together, and
``charge_order_changed`` is sent after the commit (invoices makes a past-due invoice eligible at the
next run). Every way in refuses a method the account already keeps (``payment_method_create``).
"""

import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Account, AuditEvent
from accounts.services import audit_record
from notifications.models import SentEmail
from notifications.services import (
    OWNER_ROLES,
    actor_context,
    notification_batch,
    recipients_for,
    request_channel,
)

from .customers import gateway_customer_reference
from .gateways import get_gateway
from .gateways.base import GatewayError, SetupSession, TokenizedMethod
from .models import ChargeOrderEntry, GatewayCustomer, PaymentMethod
from .ranks import NOT_IN_ORDER, position_label
from .ratelimit import add_method_block_lift, add_method_blocked_until, add_method_failures
from .sandbox.collection import SandboxCollection
from .signals import charge_order_changed_on_commit


class ChargeOrderError(ValidationError):
    """The requested charge order was refused whole; ``messages`` says every problem."""


class DuplicatePaymentMethod(ValidationError):
    """The account already keeps this card or bank account: the gateway gave the same fingerprint.

    ``existing`` is the method on file; the message names it and its place in the charge order.
    """

    def __init__(self, existing: PaymentMethod):
        self.existing = existing
        entry = getattr(existing, "rank", None)
        place = position_label(entry.position if entry else None, unranked=NOT_IN_ORDER)
        if existing.kind == PaymentMethod.Kind.CARD:
            message = _("This card is already on file as %(label)s (%(place)s).")
        else:
            message = _("This bank account is already on file as %(label)s (%(place)s).")
        super().__init__(message % {"label": existing.label, "place": place}, code="duplicate")


def charge_order_ids(*, account: Account) -> list[int]:
    return list(
        ChargeOrderEntry.objects.filter(account=account)
        .order_by("position")
        .values_list("method_id", flat=True)
    )


def _method_snapshot(method: PaymentMethod) -> dict:
    return {
        "id": method.pk,
        "kind": method.kind,
        "label": method.label,
        "exp": f"{method.exp_month:02d}/{method.exp_year}" if method.exp_month else None,
        "status": method.status,
    }


def _lock_account(account: Account) -> Account:
    # Serialises every change to one account's methods, so two concurrent edits cannot interleave.
    return Account.objects.select_for_update().get(pk=account.pk)


def _security_notice(
    *, account: Account, event: AuditEvent, actor, request, order_before: list[int] | None = None
) -> None:
    """Tell the owners who changed what, when and from where, so a hijacked session cannot quietly
    redirect payments. ``order_before`` is the charge order before the change, if it could change.
    Labels are taken now: the email must say what the order was, whatever happens to it later.

    One member's changes within SECURITY_NOTICE_WINDOW_SECONDS of their first make one notice,
    listing each (twelve reorders in three minutes are one email, not twelve); it is sent when the
    window closes. The account is locked (``_lock_account``), which serialises the batch."""
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


def _write_order(*, account: Account, method_ids: list[int]) -> None:
    ChargeOrderEntry.objects.filter(account=account).delete()
    ChargeOrderEntry.objects.bulk_create(
        ChargeOrderEntry(account=account, method_id=method_id, position=position)
        for position, method_id in enumerate(method_ids, start=1)
    )


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
    account = _lock_account(account)
    method_ids = [int(method_id) for method_id in method_ids]
    _validate_order(account=account, method_ids=method_ids)
    before = charge_order_ids(account=account)
    if before == method_ids:
        return before
    _write_order(account=account, method_ids=method_ids)
    event = audit_record(
        account=account,
        action=AuditEvent.Action.ORDER_CHANGED,
        actor=actor,
        before={"order": before},
        after={"order": method_ids},
        request=request,
    )
    charge_order_changed_on_commit(account_id=account.pk)
    _security_notice(account=account, event=event, actor=actor, request=request, order_before=before)
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
        order = charge_order_ids(account=_lock_account(account))
        _require_in_order(order, method_id)
        return charge_order_set(
            account=account,
            actor=actor,
            method_ids=_reordered(order, method_id, to=order.index(method_id) + offset),
            request=request,
        )


def charge_order_make_primary(*, account: Account, actor, method_id: int, request=None) -> list[int]:
    with transaction.atomic():
        order = charge_order_ids(account=_lock_account(account))
        return charge_order_set(
            account=account, actor=actor, method_ids=_reordered(order, method_id, to=0), request=request
        )


def charge_order_add_backup(*, account: Account, actor, method_id: int, request=None) -> list[int]:
    with transaction.atomic():
        order = charge_order_ids(account=_lock_account(account))
        if method_id in order:
            return order
        return charge_order_set(account=account, actor=actor, method_ids=[*order, method_id], request=request)


def charge_order_remove(*, account: Account, actor, method_id: int, request=None) -> list[int]:
    """Take a method out of the charge order but keep it on file."""
    with transaction.atomic():
        order = charge_order_ids(account=_lock_account(account))
        _require_in_order(order, method_id)
        return charge_order_set(
            account=account, actor=actor, method_ids=[m for m in order if m != method_id], request=request
        )


def payment_method_duplicate_of(
    *, account: Account, tokenized: TokenizedMethod, gateway: str | None = None
) -> PaymentMethod | None:
    """The account's active method with the same fingerprint at the same gateway, if any.

    Every gateway fingerprints what it tokenises (the sandbox too), the same card or bank account
    giving the same fingerprint each time; a method without one is never taken for a duplicate.
    """
    if not tokenized.fingerprint:
        return None
    return (
        PaymentMethod.objects.active()
        .filter(
            account=account,
            gateway=gateway or get_gateway().name,
            kind=tokenized.kind,
            fingerprint=tokenized.fingerprint,
        )
        .select_related("rank")
        .order_by("pk")
        .first()
    )


def payment_method_refuse_duplicate(
    *, account: Account, tokenized: TokenizedMethod, gateway: str | None = None
) -> None:
    """Raise DuplicatePaymentMethod if the account already keeps this method."""
    existing = payment_method_duplicate_of(account=account, tokenized=tokenized, gateway=gateway)
    if existing is not None:
        raise DuplicatePaymentMethod(existing)


@transaction.atomic
def payment_method_create(
    *,
    account: Account,
    actor,
    tokenized: TokenizedMethod,
    gateway: str,
    add_to_order: bool = True,
    replaces: PaymentMethod | None = None,
    allow_duplicate: bool = False,
    request=None,
) -> PaymentMethod:
    """Keep a tokenised method and, if asked and there is room, rank it last in the charge order.

    Refused (DuplicatePaymentMethod, nothing kept) if the account already keeps the same card or
    bank account, unless ``allow_duplicate``. With ``replaces`` (a method in the charge order, such
    as a card reported lost), the new method takes its place and the old one leaves the order but
    stays on file: one audited change, one security notice.
    """
    account = _lock_account(account)
    if replaces is not None:
        replaces = PaymentMethod.objects.active().filter(account=account, pk=replaces.pk).first()
        if replaces is None:
            raise ValidationError(_("The payment method to replace is no longer on file."))
    if not allow_duplicate:
        payment_method_refuse_duplicate(account=account, tokenized=tokenized, gateway=gateway)
    method = PaymentMethod.objects.create(
        account=account,
        kind=tokenized.kind,
        gateway=gateway,
        token=tokenized.token,
        fingerprint=tokenized.fingerprint,
        brand=tokenized.brand,
        last4=tokenized.last4,
        exp_month=tokenized.exp_month,
        exp_year=tokenized.exp_year,
        bank_name=tokenized.bank_name,
        added_by=actor if actor is not None and actor.is_authenticated else None,
    )
    event = audit_record(
        account=account,
        action=AuditEvent.Action.METHOD_ADDED,
        actor=actor,
        obj=method,
        after=_method_snapshot(method),
        request=request,
    )
    order = charge_order_ids(account=account)
    new_order = None
    if replaces is not None and replaces.pk in order:
        new_order = [method.pk if m == replaces.pk else m for m in order]
    elif add_to_order and len(order) < 1 + settings.BILLING_MAX_BACKUPS:
        new_order = [*order, method.pk]
    if new_order is not None:
        _write_order(account=account, method_ids=new_order)
        audit_record(
            account=account,
            action=AuditEvent.Action.ORDER_CHANGED,
            actor=actor,
            before={"order": order},
            after={"order": new_order, **({"replaced": replaces.pk} if replaces is not None else {})},
            request=request,
        )
    charge_order_changed_on_commit(account_id=account.pk)
    _security_notice(account=account, event=event, actor=actor, request=request, order_before=order)
    return method


def payment_method_setup_start(*, account: Account, kind: str) -> SetupSession:
    """What the add-method page needs from the gateway to collect a method of ``kind`` (outside any
    transaction: it may create the account's customer at the processor)."""
    gateway = get_gateway()
    customer = gateway_customer_reference(account_id=account.pk, gateway=gateway.name)
    return gateway.start_setup(account=account, kind=kind, customer=customer)


def payment_method_setup_finish(
    *,
    account: Account,
    actor,
    kind: str,
    reference: str,
    add_to_order=True,
    replaces: PaymentMethod | None = None,
    request=None,
) -> PaymentMethod:
    """Keep the method the customer's browser saved with the gateway (``reference``: what the
    processor gave the browser back). Raises InvalidPaymentDetails if the gateway will not save it,
    DuplicatePaymentMethod if the account already keeps it (``payment_method_create``)."""
    gateway = get_gateway()
    customer = gateway_customer_reference(account_id=account.pk, gateway=gateway.name)
    tokenized = gateway.finish_setup(account=account, kind=kind, customer=customer, reference=reference)
    return payment_method_create(
        account=account,
        actor=actor,
        tokenized=tokenized,
        gateway=gateway.name,
        add_to_order=add_to_order,
        replaces=replaces,
        request=request,
    )


def _number_taking_gateway() -> SandboxCollection:
    """The configured gateway, if it takes numbers on the server (only the sandbox does)."""
    gateway = get_gateway()
    if not isinstance(gateway, SandboxCollection):
        raise GatewayError(f"The {gateway.name} gateway collects payment details in the browser only.")
    return gateway


def payment_method_keep(
    *, account: Account, actor, collected: TokenizedMethod, add_to_order=True, replaces=None, request=None
) -> PaymentMethod:
    """Keep a method tokenised on the server, saved to the account's customer as a method collected
    in the browser is (``payment_method_setup_finish``)."""
    return payment_method_setup_finish(
        account=account,
        actor=actor,
        kind=collected.kind,
        reference=collected.token,
        add_to_order=add_to_order,
        replaces=replaces,
        request=request,
    )


def payment_method_tokenize_card(*, number: str, exp_month: int, exp_year: int, cvc: str) -> TokenizedMethod:
    """Tokenise a card on the server (the sandbox's test cards only; raises InvalidPaymentDetails).
    The number goes no further."""
    gateway = _number_taking_gateway()
    return gateway.tokenize_card(number=number, exp_month=exp_month, exp_year=exp_year, cvc=cvc)


def payment_method_tokenize_sepa_debit(*, iban: str, account_holder: str) -> TokenizedMethod:
    return _number_taking_gateway().tokenize_sepa_debit(iban=iban, account_holder=account_holder)


def payment_method_tokenize_ach_debit(
    *, routing_number: str, account_number: str, account_holder: str
) -> TokenizedMethod:
    return _number_taking_gateway().tokenize_ach_debit(
        routing_number=routing_number, account_number=account_number, account_holder=account_holder
    )


def payment_method_add_card(
    *,
    account: Account,
    actor,
    number: str,
    exp_month: int,
    exp_year: int,
    cvc: str,
    add_to_order=True,
    request=None,
) -> PaymentMethod:
    """Tokenise a card on the server and keep it (the API's one-step add)."""
    collected = payment_method_tokenize_card(number=number, exp_month=exp_month, exp_year=exp_year, cvc=cvc)
    return payment_method_keep(
        account=account, actor=actor, collected=collected, add_to_order=add_to_order, request=request
    )


def payment_method_add_sepa_debit(
    *, account: Account, actor, iban: str, account_holder: str, add_to_order=True, request=None
) -> PaymentMethod:
    collected = payment_method_tokenize_sepa_debit(iban=iban, account_holder=account_holder)
    return payment_method_keep(
        account=account, actor=actor, collected=collected, add_to_order=add_to_order, request=request
    )


def payment_method_add_ach_debit(
    *,
    account: Account,
    actor,
    routing_number: str,
    account_number: str,
    account_holder: str,
    add_to_order=True,
    request=None,
) -> PaymentMethod:
    collected = payment_method_tokenize_ach_debit(
        routing_number=routing_number, account_number=account_number, account_holder=account_holder
    )
    return payment_method_keep(
        account=account, actor=actor, collected=collected, add_to_order=add_to_order, request=request
    )


@transaction.atomic
def payment_method_update_expiry(
    *, method: PaymentMethod, actor, exp_month: int, exp_year: int, request=None
) -> PaymentMethod:
    """A customer's update of a card's expiry; it also lifts a block left by a hard decline."""
    _lock_account(method.account)
    method = PaymentMethod.objects.select_for_update().get(pk=method.pk)
    if not method.is_active:
        raise ValidationError(_("This payment method has been removed."))
    before = _method_snapshot(method)
    method.exp_month, method.exp_year = exp_month, exp_year
    method.blocked_at, method.blocked_reason = None, ""
    method.updated_at = timezone.now()
    method.full_clean(validate_unique=False, validate_constraints=False)
    method.save(update_fields=["exp_month", "exp_year", "blocked_at", "blocked_reason", "updated_at"])
    event = audit_record(
        account=method.account,
        action=AuditEvent.Action.METHOD_UPDATED,
        actor=actor,
        obj=method,
        before=before,
        after=_method_snapshot(method),
        request=request,
    )
    charge_order_changed_on_commit(account_id=method.account_id)
    _security_notice(account=method.account, event=event, actor=actor, request=request)
    return method


@transaction.atomic
def payment_method_remove(
    *, method: PaymentMethod, actor, request=None, actor_label: str = ""
) -> PaymentMethod:
    """Remove a method: it leaves the charge order (backup 1 becomes primary if it was primary).
    ``actor_label`` names who removed it when no user did (the gateway, when it was detached there)."""
    account = _lock_account(method.account)
    method = PaymentMethod.objects.select_for_update().get(pk=method.pk)
    if not method.is_active:
        return method
    before_order = charge_order_ids(account=account)
    before = _method_snapshot(method)
    method.status = PaymentMethod.Status.REMOVED
    method.removed_at = timezone.now()
    method.save(update_fields=["status", "removed_at"])
    if method.pk in before_order:
        _write_order(account=account, method_ids=[m for m in before_order if m != method.pk])
    event = audit_record(
        account=account,
        action=AuditEvent.Action.METHOD_REMOVED,
        actor=actor,
        actor_label=actor_label,
        obj=method,
        before={**before, "order": before_order},
        after={**_method_snapshot(method), "order": charge_order_ids(account=account)},
        request=request,
    )
    _security_notice(account=account, event=event, actor=actor, request=request, order_before=before_order)
    return method


def add_method_unblock(*, account: Account, actor, request=None) -> bool:
    """Support's lift of the card-testing pause on adding methods (payments.ratelimit), audited with
    when it would have ended and how many refusals led to it. False if the account was not blocked."""
    until = add_method_blocked_until(account_id=account.pk)
    if until is None:
        return False
    with transaction.atomic():
        audit_record(
            account=account,
            action=AuditEvent.Action.ADD_BLOCK_LIFTED,
            actor=actor,
            obj=account,
            before={
                "blocked_until": until.isoformat(timespec="seconds"),
                "refusals": add_method_failures(account_id=account.pk),
            },
            after={"blocked_until": None},
            request=request,
        )
    add_method_block_lift(account_id=account.pk)
    return True


# What the gateway says of a saved method on its own (its webhooks) ---------------------------------


@transaction.atomic
def payment_method_refresh(*, method: PaymentMethod, saved: TokenizedMethod, source: str) -> bool:
    """Take in a method as the gateway has it now, after the card networks' updater renewed it (a new
    expiry, maybe a new last 4). A new expiry lifts a hard decline's block, as the customer's own
    update does, and reminders of the old date are never sent (their key is the old date). Returns
    whether anything changed; a removed method changes no more."""
    _lock_account(method.account)
    method = PaymentMethod.objects.select_for_update().get(pk=method.pk)
    if not method.is_active:
        return False
    fresh = {
        "brand": saved.brand or method.brand,
        "last4": saved.last4 or method.last4,
        "exp_month": saved.exp_month or method.exp_month,
        "exp_year": saved.exp_year or method.exp_year,
    }
    if all(getattr(method, field) == value for field, value in fresh.items()):
        return False
    before = _method_snapshot(method)
    expiry_changed = (fresh["exp_month"], fresh["exp_year"]) != (method.exp_month, method.exp_year)
    for field, value in fresh.items():
        setattr(method, field, value)
    fields = [*fresh, "updated_at"]
    if expiry_changed:
        method.blocked_at, method.blocked_reason = None, ""
        fields += ["blocked_at", "blocked_reason"]
    method.updated_at = timezone.now()
    method.full_clean(validate_unique=False, validate_constraints=False)
    method.save(update_fields=fields)
    audit_record(
        account=method.account,
        action=AuditEvent.Action.METHOD_UPDATED,
        actor_label=f"gateway: {source}",
        obj=method,
        before=before,
        after=_method_snapshot(method),
    )
    charge_order_changed_on_commit(account_id=method.account_id)
    return True


def payment_method_adopt(*, gateway, customer: str, kind: str, reference: str) -> PaymentMethod | None:
    """Keep a method the customer saved at the gateway (its ``setup_intent.succeeded``), if our
    add-method page did not keep it already: the same method is kept once, and a card already on
    file (same fingerprint) is not kept twice. None when there is nothing to keep. A remote call:
    never inside a transaction."""
    found = GatewayCustomer.objects.filter(gateway=gateway.name, reference=customer).select_related("account")
    link = found.first()
    if link is None:
        return None
    account = link.account
    tokenized = gateway.finish_setup(account=account, kind=kind, customer=customer, reference=reference)
    with transaction.atomic():
        _lock_account(account)
        mine = PaymentMethod.objects.filter(account=account, gateway=gateway.name)
        existing = mine.filter(token=tokenized.token).first()
        if existing is not None:
            return existing
        if mine.active().filter(fingerprint=tokenized.fingerprint).exists():
            return None
        return payment_method_create(account=account, actor=None, tokenized=tokenized, gateway=gateway.name)
