"""Writes to invoices that are not settlement: issuing, voiding, writing off."""

import dataclasses
import datetime

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Account, AuditEvent
from accounts.services import audit_record
from core.bulk import insert_rows

from . import transitions
from .models import Invoice, PaymentAttempt
from .rules import (
    InvoiceProblem,
    amount_problem,
    currency_problem,
    date_problem,
    description_problem,
    id_problem,
    number_problem,
)


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

    def invoice_fields(self) -> dict:
        """The new invoice's fields, by attribute name: first due at midnight of its due date."""
        return {
            "account_id": self.account_id,
            "number": self.number,
            "currency": self.currency,
            "amount_minor": self.amount_minor,
            "issued_on": self.issued_on,
            "due_on": self.due_on,
            "description": self.description,
            "next_attempt_at": timezone.make_aware(datetime.datetime.combine(self.due_on, datetime.time.min)),
        }

    def matches(self, invoice: Invoice) -> bool:
        """Whether ``invoice`` (or a row of its fields) is what these details issued: a re-sent
        number must match."""
        return (
            invoice.account_id == self.account_id
            and invoice.currency == self.currency
            and invoice.amount_minor == self.amount_minor
            and invoice.issued_on == self.issued_on
            and invoice.due_on == self.due_on
        )

    def audited(self) -> dict:
        """What the ``invoice.issued`` audit event records."""
        return {"number": self.number, "amount_minor": self.amount_minor, "currency": self.currency}


def invoice_data_validate(data: InvoiceData) -> list[InvoiceProblem]:
    """Every problem with ``data``, each with its field; an empty list if it can be issued.

    The one set of rules for every way in (the staff API, the import). It reads nothing from the
    database: that the account exists and the number is free are checked by the caller, in bulk.
    """
    currency = currency_problem(data.currency)
    problems = [
        InvoiceProblem(field, message)
        for field, message in (
            ("account_id", id_problem(data.account_id)),
            ("number", number_problem(data.number)),
            ("currency", currency),
            (
                "amount_minor",
                amount_problem(data.amount_minor, currency=None if currency else data.currency),
            ),
            ("issued_on", date_problem(data.issued_on, due=False)),
            ("due_on", date_problem(data.due_on, due=True)),
            ("description", description_problem(data.description)),
        )
        if message
    ]
    dated = not any(problem.field in ("issued_on", "due_on") for problem in problems)
    if dated and data.due_on < data.issued_on:
        problems.append(InvoiceProblem("", _("The due date must not be before the issue date.")))
    return problems


def invoice_issue(*, data: InvoiceData, actor_label: str) -> tuple[Invoice, bool]:
    """Issue an invoice; idempotent on its number. Returns (invoice, created).

    Sending the same number again with the same content returns the existing invoice; the same
    number with other content is refused rather than silently ignored.
    """
    problems = invoice_data_validate(data)
    if problems:
        raise ValidationError([problem.message for problem in problems])
    try:
        with transaction.atomic():
            account = Account.objects.get(pk=data.account_id)
            invoice = Invoice.objects.create(**data.invoice_fields())
            audit_record(
                account=account,
                action=AuditEvent.Action.INVOICE_ISSUED,
                actor_label=actor_label,
                obj=invoice,
                after=data.audited(),
            )
            return invoice, True
    except Account.DoesNotExist:
        raise ValidationError(_("Account %(id)s does not exist.") % {"id": data.account_id}) from None
    except IntegrityError:
        existing = Invoice.objects.filter(number=data.number).first()
        if existing is None:
            raise
        if not data.matches(existing):
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
            ctx=transitions.context_now(trigger="", actor=actor, actor_label=actor_label, request=request),
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
