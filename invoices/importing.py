"""Bulk invoice import from the operator's metering system: CSV or JSON lines, all or nothing.

Every row is checked before anything is written, by the rules the staff API uses
(``invoice_data_validate``); one bad row refuses the whole file, with each problem reported by line
and field. A clean file is issued in one transaction, idempotent on the invoice number exactly as
the staff API is: the accounts and the numbers already issued are read in bulk, and the invoices and
their ``invoice.issued`` audit events are written in batches, so a file of 100,000 rows takes
seconds, not minutes.
"""

import dataclasses
from collections.abc import Iterable

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from accounts.models import Account, AuditEvent
from accounts.services import audit_event
from core.bulk import copy_rows

from .import_files import InvoiceImportError, Row, RowError, invoice_rows_parse, shown
from .models import Invoice
from .rules import id_problem, number_problem
from .services import invoice_data_validate

# Keeps each IN (...) query under SQLite's bound-parameter limit.
LOOKUP_CHUNK = 1000
# Invoices per INSERT: large enough that the statements cost little, small enough to hold in memory.
INSERT_BATCH = 5000
# What InvoiceData.matches compares, read for each number already issued.
COMPARED_FIELDS = ("number", "account_id", "currency", "amount_minor", "issued_on", "due_on")
# Checks before writing, when another writer keeps issuing the same numbers meanwhile.
ATTEMPTS = 3


@dataclasses.dataclass
class ImportResult:
    created: int = 0
    already_present: int = 0


# Checking rows against each other and against the database.


def _chunks(values: list, size: int = LOOKUP_CHUNK) -> Iterable[list]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


@dataclasses.dataclass
class Checked:
    """What checking the rows found: the problems, the accounts named, and the numbers already
    issued with the same details (left as they are)."""

    errors: list[RowError]
    accounts: dict[int, Account]
    present: set[str]


def invoice_rows_check(rows: list[Row]) -> Checked:
    """Every problem with ``rows`` (by line): the rules row by row, numbers repeated in the file,
    then, in bulk, unknown accounts and numbers already issued with other details."""
    errors = []
    first_line: dict[str, int] = {}
    for row in rows:
        errors.extend(
            RowError(row.line, problem.message, problem.field) for problem in invoice_data_validate(row.data)
        )
        number = row.data.number
        if number in first_line:
            errors.append(
                RowError(
                    row.line,
                    _("invoice %(number)s already appears on line %(line)s.")
                    % {"number": shown(number), "line": first_line[number]},
                )
            )
        else:
            first_line[number] = row.line

    # Only what the rules allow is looked up: a 30-digit id or a NUL is no query parameter.
    account_ids = {row.data.account_id for row in rows if id_problem(row.data.account_id) is None}
    accounts = {}
    for chunk in _chunks(sorted(account_ids)):
        accounts.update(
            (account.pk, account) for account in Account.objects.filter(pk__in=chunk).order_by().only("pk")
        )
    numbers = [number for number in first_line if number_problem(number) is None]
    existing = {}
    for chunk in _chunks(numbers):
        issued = Invoice.objects.filter(number__in=chunk).order_by().values_list(*COMPARED_FIELDS, named=True)
        existing.update({invoice.number: invoice for invoice in issued})

    present = set()
    for row in rows:
        if row.data.account_id not in accounts and row.data.account_id in account_ids:
            errors.append(
                RowError(row.line, _("account %(id)s does not exist.") % {"id": row.data.account_id})
            )
        invoice = existing.get(row.data.number)
        if invoice is None or first_line[row.data.number] != row.line:
            continue
        if row.data.matches(invoice):
            present.add(row.data.number)
        else:
            errors.append(
                RowError(
                    row.line,
                    _("invoice %(number)s already exists with different details.")
                    % {"number": row.data.number},
                )
            )
    return Checked(sorted(errors, key=lambda error: error.line), accounts, present)


# Writing.


def _issue(rows: list[Row], checked: Checked, *, actor_label: str) -> int:
    """Insert the new invoices and their audit events, in batches, in the caller's transaction."""
    new = [row.data for row in rows if row.data.number not in checked.present]
    for batch in _chunks(new, INSERT_BATCH):
        keys = copy_rows(Invoice, [data.invoice_fields() for data in batch])
        # The event invoice_issue records, made once by audit_event: only the invoice differs.
        template = audit_event(
            account=checked.accounts[batch[0].account_id],
            action=AuditEvent.Action.INVOICE_ISSUED,
            actor_label=actor_label,
            obj=Invoice(pk=keys[0]),
        )
        common = {
            field.attname: getattr(template, field.attname)
            for field in AuditEvent._meta.concrete_fields
            if not field.primary_key and not getattr(field, "auto_now_add", False)
        }
        copy_rows(
            AuditEvent,
            [
                common | {"account_id": data.account_id, "object_id": str(key), "after": data.audited()}
                for data, key in zip(batch, keys, strict=True)
            ],
        )
    return len(new)


def invoices_import(*, text: str, fmt: str, actor_label: str, dry_run: bool = False) -> ImportResult:
    """Issue every row in one transaction, or nothing (InvoiceImportError, every problem by line)."""
    rows, parse_errors = invoice_rows_parse(text, fmt=fmt)
    attempt = 1
    while True:
        checked = invoice_rows_check(rows)
        errors = sorted(parse_errors + checked.errors, key=lambda error: error.line)
        if errors:
            raise InvoiceImportError(errors)
        result = ImportResult(created=len(rows) - len(checked.present), already_present=len(checked.present))
        if dry_run:
            return result
        try:
            with transaction.atomic():
                _issue(rows, checked, actor_label=actor_label)
        except IntegrityError:
            # Another writer issued one of these numbers since the check (or removed an account):
            # check again, which names the conflict or finds it issued identically.
            if attempt == ATTEMPTS:
                raise
            attempt += 1
            continue
        return result
