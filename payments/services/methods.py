"""Payment methods: added (tokenised first, outside any transaction), refreshed from the gateway,
re-dated, removed; one the account already keeps is refused."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Account, AuditEvent
from accounts.services import audit_record

from ..customers import gateway_customer_reference
from ..gateways import get_gateway
from ..gateways.base import SetupSession, TokenizedMethod
from ..models import GatewayCustomer, PaymentMethod
from ..ranks import NOT_IN_ORDER, position_label
from ..ratelimit import add_method_block_lift, add_method_blocked_until, add_method_failures
from ..signals import charge_order_changed_on_commit
from .notices import charge_order_ids, lock_account, method_snapshot, security_notice, write_order


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
    account = lock_account(account)
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
        after=method_snapshot(method),
        request=request,
    )
    order = charge_order_ids(account=account)
    new_order = None
    if replaces is not None and replaces.pk in order:
        new_order = [method.pk if m == replaces.pk else m for m in order]
    elif add_to_order and len(order) < 1 + settings.BILLING_MAX_BACKUPS:
        new_order = [*order, method.pk]
    if new_order is not None:
        write_order(account=account, method_ids=new_order)
        audit_record(
            account=account,
            action=AuditEvent.Action.ORDER_CHANGED,
            actor=actor,
            before={"order": order},
            after={"order": new_order, **({"replaced": replaces.pk} if replaces is not None else {})},
            request=request,
        )
    charge_order_changed_on_commit(account_id=account.pk)
    security_notice(account=account, event=event, actor=actor, request=request, order_before=order)
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


@transaction.atomic
def payment_method_update_expiry(
    *, method: PaymentMethod, actor, exp_month: int, exp_year: int, request=None
) -> PaymentMethod:
    """A customer's update of a card's expiry; it also lifts a block left by a hard decline."""
    lock_account(method.account)
    method = PaymentMethod.objects.select_for_update().get(pk=method.pk)
    if not method.is_active:
        raise ValidationError(_("This payment method has been removed."))
    before = method_snapshot(method)
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
        after=method_snapshot(method),
        request=request,
    )
    charge_order_changed_on_commit(account_id=method.account_id)
    security_notice(account=method.account, event=event, actor=actor, request=request)
    return method


@transaction.atomic
def payment_method_remove(
    *, method: PaymentMethod, actor, request=None, actor_label: str = ""
) -> PaymentMethod:
    """Remove a method: it leaves the charge order (backup 1 becomes primary if it was primary).
    ``actor_label`` names who removed it when no user did (the gateway, when it was detached there)."""
    account = lock_account(method.account)
    method = PaymentMethod.objects.select_for_update().get(pk=method.pk)
    if not method.is_active:
        return method
    before_order = charge_order_ids(account=account)
    before = method_snapshot(method)
    method.status = PaymentMethod.Status.REMOVED
    method.removed_at = timezone.now()
    method.save(update_fields=["status", "removed_at"])
    if method.pk in before_order:
        write_order(account=account, method_ids=[m for m in before_order if m != method.pk])
    event = audit_record(
        account=account,
        action=AuditEvent.Action.METHOD_REMOVED,
        actor=actor,
        actor_label=actor_label,
        obj=method,
        before={**before, "order": before_order},
        after={**method_snapshot(method), "order": charge_order_ids(account=account)},
        request=request,
    )
    security_notice(account=account, event=event, actor=actor, request=request, order_before=before_order)
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
    lock_account(method.account)
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
    before = method_snapshot(method)
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
        after=method_snapshot(method),
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
        lock_account(account)
        mine = PaymentMethod.objects.filter(account=account, gateway=gateway.name)
        existing = mine.filter(token=tokenized.token).first()
        if existing is not None:
            return existing
        if mine.active().filter(fingerprint=tokenized.fingerprint).exists():
            return None
        return payment_method_create(account=account, actor=None, tokenized=tokenized, gateway=gateway.name)
