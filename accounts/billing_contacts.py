"""Who receives an account's invoice and payment emails: the billing email and up to
BILLING_MAX_RECIPIENTS further addresses. Security notices go to the owners only, whatever these say.

Owners and billing members change them; each change is audited and the owners are told who
changed what (``accounts.signals.account_access_changed``), as for a change to the charge order.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils.translation import gettext as _

from .models import Account, AuditEvent
from .services import audit_record
from .signals import account_access_changed_on_commit


class BillingContactsError(ValidationError):
    """The billing contacts were refused whole; nothing changed."""


def billing_contacts(account: Account) -> dict:
    return {"billing_email": account.billing_email, "recipients": list(account.billing_recipients or [])}


def _cleaned(billing_email: str, recipients: list[str]) -> tuple[str, list[str]]:
    billing_email = (billing_email or "").strip()
    errors: dict[str, list[str]] = {}
    try:
        validate_email(billing_email)
    except ValidationError:
        errors["billing_email"] = [_("Enter the billing email as a valid email address.")]
    kept, seen = [], {billing_email.lower()}
    for address in recipients:
        address = (address or "").strip()
        if not address:
            continue
        try:
            validate_email(address)
        except ValidationError:
            errors.setdefault("recipients", []).append(
                _("%(address)s is not a valid email address.") % {"address": address}
            )
            continue
        if address.lower() not in seen:  # the billing email, or an address given twice, counts once
            seen.add(address.lower())
            kept.append(address)
    limit = settings.BILLING_MAX_RECIPIENTS
    if len(kept) > limit:
        errors.setdefault("recipients", []).append(_("Add at most %(n)s further recipients.") % {"n": limit})
    if errors:
        raise BillingContactsError(errors)
    return billing_email, kept


@transaction.atomic
def billing_contacts_set(
    *, account: Account, actor, billing_email: str, recipients: list[str], request=None
) -> dict:
    """Replace the billing email and the further recipients; returns the contacts now in force.

    Refused whole (BillingContactsError) if an address is not one, or there are too many.
    Addresses are kept as typed; one given twice, or the billing email again, is kept once.
    """
    billing_email, recipients = _cleaned(billing_email, recipients)
    account = Account.objects.select_for_update().get(pk=account.pk)
    before = billing_contacts(account)
    after = {"billing_email": billing_email, "recipients": recipients}
    if before == after:
        return before
    Account.objects.filter(pk=account.pk).update(billing_email=billing_email, billing_recipients=recipients)
    event = audit_record(
        account=account,
        action=AuditEvent.Action.BILLING_CONTACTS_CHANGED,
        actor=actor,
        obj=account,
        before=before,
        after=after,
        request=request,
    )
    account_access_changed_on_commit(event=event, request=request)
    return after
