"""Bulk invoice import from the operator's metering system: CSV or JSON lines, all or nothing.

Every row is checked before anything is written; one bad row refuses the whole file, with each
problem reported by line. A clean file is issued in one transaction through ``invoice_issue``, so
the import is idempotent on the invoice number exactly as the staff API is.
"""

import csv
import dataclasses
import datetime
import io
import json
import re
from collections.abc import Iterable, Iterator

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from accounts.models import Account

from .models import Invoice
from .services import InvoiceData, invoice_data_validate, invoice_issue

FORMATS = ("csv", "jsonl")
REQUIRED_FIELDS = ("account_id", "number", "currency", "amount_minor", "issued_on", "due_on")
OPTIONAL_FIELDS = ("description",)
EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}
# Keeps each IN (...) query under SQLite's bound-parameter limit.
LOOKUP_CHUNK = 1000


@dataclasses.dataclass(frozen=True)
class Row:
    line: int
    data: InvoiceData


@dataclasses.dataclass(frozen=True)
class RowError:
    line: int
    message: str

    def __str__(self):
        return _("line %(line)s: %(message)s") % {"line": self.line, "message": self.message}


@dataclasses.dataclass
class ImportResult:
    created: int = 0
    already_present: int = 0


class InvoiceImportError(Exception):
    """The file was refused whole; ``errors`` lists every problem by line."""

    def __init__(self, errors: list[RowError]):
        super().__init__(f"{len(errors)} problem(s)")
        self.errors = errors


def import_format_detect(*, filename: str, head: str) -> str:
    """The format named by the file's extension, else guessed from its first character."""
    for extension, fmt in EXTENSIONS.items():
        if filename.lower().endswith(extension):
            return fmt
    return "jsonl" if head.lstrip().startswith("{") else "csv"


# Parsing: text → (line, InvoiceData) or a RowError per problem.


def _parse_int(value, field: str) -> int:
    if isinstance(value, bool):
        raise ValueError(_("%(field)s must be a whole number.") % {"field": field})
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
        return int(value.strip())
    raise ValueError(_("%(field)s must be a whole number, not %(value)r.") % {"field": field, "value": value})


def _parse_date(value, field: str) -> datetime.date:
    if isinstance(value, str):
        try:
            return datetime.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(
        _("%(field)s must be a date as YYYY-MM-DD, not %(value)r.") % {"field": field, "value": value}
    )


def _parse_str(value, field: str) -> str:
    if not isinstance(value, str):
        raise ValueError(_("%(field)s must be text, not %(value)r.") % {"field": field, "value": value})
    return value.strip()


def _row_from_mapping(record: dict, *, line: int) -> Row | list[RowError]:
    errors = []
    missing = [f for f in REQUIRED_FIELDS if record.get(f) in (None, "")]
    if missing:
        errors.append(RowError(line, _("missing %(fields)s.") % {"fields": ", ".join(missing)}))
    unknown = sorted(set(record) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS))
    if unknown:
        errors.append(RowError(line, _("unknown field(s) %(fields)s.") % {"fields": ", ".join(unknown)}))
    if errors:
        return errors
    values = {}
    parsers = {
        "account_id": _parse_int,
        "number": _parse_str,
        "currency": _parse_str,
        "amount_minor": _parse_int,
        "issued_on": _parse_date,
        "due_on": _parse_date,
        "description": _parse_str,
    }
    for field, parse in parsers.items():
        if record.get(field) is None:
            continue
        try:
            values[field] = parse(record[field], field)
        except ValueError as exc:
            errors.append(RowError(line, str(exc)))
    if errors:
        return errors
    return Row(line, InvoiceData(**values))


def _csv_records(text: str) -> Iterator[tuple[int, dict | RowError]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        yield 1, RowError(1, _("the file is empty; expected a header line."))
        return
    header = [name.strip() for name in header]
    missing = [f for f in REQUIRED_FIELDS if f not in header]
    unknown = [f for f in header if f not in REQUIRED_FIELDS + OPTIONAL_FIELDS]
    if missing or unknown or len(set(header)) != len(header):
        yield (
            1,
            RowError(
                1,
                _("the header must be %(expected)s[,description], not %(header)s.")
                % {"expected": ",".join(REQUIRED_FIELDS), "header": ",".join(header)},
            ),
        )
        return
    next_line = reader.line_num + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield next_line, RowError(next_line, _("unreadable CSV: %(error)s") % {"error": exc})
            return
        line, next_line = next_line, reader.line_num + 1
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(header):
            yield (
                line,
                RowError(
                    line,
                    _("expected %(n)s values, found %(found)s.") % {"n": len(header), "found": len(cells)},
                ),
            )
            continue
        yield line, dict(zip(header, cells, strict=True))


def _jsonl_records(text: str) -> Iterator[tuple[int, dict | RowError]]:
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            yield line, RowError(line, _("not valid JSON: %(error)s") % {"error": exc.msg})
            continue
        if not isinstance(record, dict):
            yield line, RowError(line, _("each line must be a JSON object."))
            continue
        yield line, record


def invoice_rows_parse(text: str, *, fmt: str) -> tuple[list[Row], list[RowError]]:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}")
    records = _csv_records(text) if fmt == "csv" else _jsonl_records(text)
    rows, errors = [], []
    for line, record in records:
        if isinstance(record, RowError):
            errors.append(record)
            continue
        parsed = _row_from_mapping(record, line=line)
        if isinstance(parsed, Row):
            rows.append(parsed)
        else:
            errors.extend(parsed)
    return rows, errors


# Checking rows against each other and against the database.


def _chunks(values: list, size: int = LOOKUP_CHUNK) -> Iterable[list]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _same_details(invoice: Invoice, data: InvoiceData) -> bool:
    # The fields invoice_issue compares: a re-sent invoice must match what was issued.
    return (
        invoice.account_id == data.account_id
        and invoice.currency == data.currency
        and invoice.amount_minor == data.amount_minor
        and invoice.issued_on == data.issued_on
        and invoice.due_on == data.due_on
    )


def invoice_rows_check(rows: list[Row]) -> tuple[list[RowError], set[str]]:
    """Every problem with ``rows`` (by line) and the numbers that are already issued identically."""
    errors = []
    first_line: dict[str, int] = {}
    for row in rows:
        errors.extend(RowError(row.line, problem) for problem in invoice_data_validate(row.data))
        number = row.data.number
        if number in first_line:
            errors.append(
                RowError(
                    row.line,
                    _("invoice %(number)s already appears on line %(line)s.")
                    % {"number": number, "line": first_line[number]},
                )
            )
        else:
            first_line[number] = row.line

    account_ids = sorted({row.data.account_id for row in rows})
    known_accounts = set()
    for chunk in _chunks(account_ids):
        known_accounts.update(Account.objects.filter(pk__in=chunk).values_list("pk", flat=True))
    existing = {}
    for chunk in _chunks(list(first_line)):
        existing.update({invoice.number: invoice for invoice in Invoice.objects.filter(number__in=chunk)})

    present = set()
    for row in rows:
        if row.data.account_id not in known_accounts:
            errors.append(
                RowError(row.line, _("account %(id)s does not exist.") % {"id": row.data.account_id})
            )
        invoice = existing.get(row.data.number)
        if invoice is None or first_line[row.data.number] != row.line:
            continue
        if _same_details(invoice, row.data):
            present.add(row.data.number)
        else:
            errors.append(
                RowError(
                    row.line,
                    _("invoice %(number)s already exists with different details.")
                    % {"number": row.data.number},
                )
            )
    return errors, present


def invoices_import(*, text: str, fmt: str, actor_label: str, dry_run: bool = False) -> ImportResult:
    """Issue every row in one transaction, or nothing (InvoiceImportError, every problem by line)."""
    rows, parse_errors = invoice_rows_parse(text, fmt=fmt)
    check_errors, present = invoice_rows_check(rows)
    errors = sorted(parse_errors + check_errors, key=lambda error: error.line)
    if errors:
        raise InvoiceImportError(errors)
    result = ImportResult(already_present=len(present))
    if dry_run:
        result.created = len(rows) - len(present)
        return result
    with transaction.atomic():
        for row in rows:
            if row.data.number in present:
                continue
            try:
                _invoice, created = invoice_issue(data=row.data, actor_label=actor_label)
            except ValidationError as exc:
                # Another writer issued this number since the check: refuse the whole file.
                raise InvoiceImportError([RowError(row.line, message) for message in exc.messages]) from None
            if created:
                result.created += 1
            else:
                result.already_present += 1
    return result
