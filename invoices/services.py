"""Writes to invoices that are not settlement: issuing, voiding, writing off."""

import dataclasses
import datetime

from babel.numbers import is_currency
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Account, AuditEvent
from accounts.services import actor_label_for, audit_record
from core.bulk import insert_rows

from . import transitions
from .models import Invoice, PaymentAttempt


@dataclasses.dataclass(frozen=True)
class InvoiceData:
    """One invoice as the operator's metering system sends it."""

    account_id: int
    number: str
    currency: str
    amount_minor: int
    issued_on: datetime.date
    due_on: datetime.date
    description: str = ""


def invoice_data_validate(data: InvoiceData) -> list[str]:
    """Every problem with ``data``, in words; an empty list if it can be issued."""
    problems = []
    if not data.number or len(data.number) > 64:
        problems.append(_("The invoice number must be 1 to 64 characters."))
    if len(data.currency) != 3 or not data.currency.isalpha() or not data.currency.isupper():
        problems.append(_("The currency must be an ISO 4217 code such as USD."))
    else:
        if not is_currency(data.currency):
            problems.append(_("%(code)s is not a known currency.") % {"code": data.currency})
    if (
        isinstance(data.amount_minor, bool)
        or not isinstance(data.amount_minor, int)
        or data.amount_minor <= 0
    ):
        problems.append(_("The amount must be a positive whole number of minor units (cents, yen …)."))
    if data.due_on < data.issued_on:
        problems.append(_("The due date must not be before the issue date."))
    return problems


def invoice_issue(*, data: InvoiceData, actor_label: str) -> tuple[Invoice, bool]:
    """Issue an invoice; idempotent on its number. Returns (invoice, created).

    Sending the same number again with the same content returns the existing invoice; the same
    number with other content is refused rather than silently ignored.
    """
    problems = invoice_data_validate(data)
    if problems:
        raise ValidationError(problems)
    try:
        with transaction.atomic():
            account = Account.objects.get(pk=data.account_id)
            invoice = Invoice.objects.create(
                account=account,
                number=data.number,
                currency=data.currency,
                amount_minor=data.amount_minor,
                issued_on=data.issued_on,
                due_on=data.due_on,
                description=data.description,
                next_attempt_at=timezone.make_aware(
                    datetime.datetime.combine(data.due_on, datetime.time.min)
                ),
            )
            audit_record(
                account=account,
                action=AuditEvent.Action.INVOICE_ISSUED,
                actor_label=actor_label,
                obj=invoice,
                after={
                    "number": invoice.number,
                    "amount_minor": invoice.amount_minor,
                    "currency": invoice.currency,
                },
            )
            return invoice, True
    except Account.DoesNotExist:
        raise ValidationError(_("Account %(id)s does not exist.") % {"id": data.account_id}) from None
    except IntegrityError:
        existing = Invoice.objects.filter(number=data.number).first()
        if existing is None:
            raise
        same = (
            existing.account_id == data.account_id
            and existing.currency == data.currency
            and existing.amount_minor == data.amount_minor
            and existing.issued_on == data.issued_on
            and existing.due_on == data.due_on
        )
        if not same:
            raise ValidationError(
                _("Invoice %(number)s already exists with different details.") % {"number": data.number}
            ) from None
        return existing, False


def _close(*, invoice: Invoice, status: str, actor, actor_label: str = "", request=None) -> Invoice:
    """Void or write off a collectable invoice that no payment is in flight for; the audit event
    names ``actor`` and, with ``request``, where they acted from."""
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().select_related("account").get(pk=invoice.pk)
        if not invoice.is_collectable:
            raise ValidationError(
                _("Invoice %(number)s is %(status)s and cannot be changed.")
                % {"number": invoice.number, "status": invoice.get_status_display().lower()}
            )
        leased = invoice.lease_expires_at is not None and invoice.lease_expires_at > timezone.now()
        in_flight = invoice.attempts.filter(status__in=PaymentAttempt.UNRESOLVED).exists()
        if leased or in_flight:
            raise ValidationError(
                _("A payment for invoice %(number)s is in progress; try again when it has finished.")
                % {"number": invoice.number}
            )
        change = transitions.invoice_close(
            invoice=invoice,
            status=status,
            ctx=transitions.context_now(
                trigger="", actor=actor, actor_label=actor_label or actor_label_for(actor), request=request
            ),
        )
        invoice.save(update_fields=[*change.invoice_fields, "updated_at"])
        insert_rows(change.audits)
    return invoice


def invoice_void(*, invoice: Invoice, actor, actor_label: str = "", request=None) -> Invoice:
    return _close(
        invoice=invoice,
        status=Invoice.Status.VOID,
        actor=actor,
        actor_label=actor_label,
        request=request,
    )


def invoice_mark_uncollectible(*, invoice: Invoice, actor, actor_label: str = "", request=None) -> Invoice:
    return _close(
        invoice=invoice,
        status=Invoice.Status.UNCOLLECTIBLE,
        actor=actor,
        actor_label=actor_label,
        request=request,
    )
