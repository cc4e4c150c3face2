"""Bulk invoice import from the operator's metering system: CSV or JSON lines, all or nothing.

Every row is checked before anything is written, by the rules the staff API uses
(``invoice_data_validate``); one bad row refuses the whole file, with each problem reported by line
and field. A clean file is issued in one transaction, idempotent on the invoice number exactly as
the staff API is: the accounts and the numbers already issued are read in bulk, and the invoices and
their ``invoice.issued`` audit events are written in batches, so a file of 100,000 rows takes
seconds, not minutes.
"""

import csv
import dataclasses
import datetime
import io
import json
import re
from collections.abc import Iterable, Iterator

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from accounts.models import Account, AuditEvent
from accounts.services import audit_event
from core.bulk import copy_rows

from .models import Invoice
from .rules import id_problem, number_problem
from .services import InvoiceData, invoice_data_validate

FORMATS = ("csv", "jsonl")
REQUIRED_FIELDS = ("account_id", "number", "currency", "amount_minor", "issued_on", "due_on")
OPTIONAL_FIELDS = ("description",)
EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}
# Keeps each IN (...) query under SQLite's bound-parameter limit.
LOOKUP_CHUNK = 1000
# Invoices per INSERT: large enough that the statements cost little, small enough to hold in memory.
INSERT_BATCH = 5000
# More digits than any amount or id can have; int() of a longer text is refused by Python itself.
MAX_DIGITS = 30
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# What InvoiceData.matches compares, read for each number already issued.
COMPARED_FIELDS = ("number", "account_id", "currency", "amount_minor", "issued_on", "due_on")
# Checks before writing, when another writer keeps issuing the same numbers meanwhile.
ATTEMPTS = 3


@dataclasses.dataclass(frozen=True)
class Row:
    line: int
    data: InvoiceData


@dataclasses.dataclass(frozen=True)
class RowError:
    line: int
    message: str
    field: str = ""  # the column, when the message comes from the rules and does not name it

    def __str__(self):
        message = f"{self.field}: {self.message}" if self.field else self.message
        return _("line %(line)s: %(message)s") % {"line": self.line, "message": message}


@dataclasses.dataclass
class ImportResult:
    created: int = 0
    already_present: int = 0


class InvoiceImportError(Exception):
    """The file was refused whole; ``errors`` lists every problem by line."""

    def __init__(self, errors: list[RowError]):
        super().__init__(f"{len(errors)} problem(s)")
        self.errors = errors


class NotUtf8Error(InvoiceImportError):
    """The file is not UTF-8 text: ``errors`` names each line that is not."""


def import_text_decode(data: bytes) -> str:
    """The file's text; NotUtf8Error names every line that is not UTF-8."""
    try:
        # utf-8-sig: spreadsheets often start a CSV export with a byte-order mark.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    errors = []
    for line, raw in enumerate(data.split(b"\n"), start=1):
        try:
            raw.decode("utf-8-sig" if line == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            errors.append(
                RowError(line, _("not UTF-8 text (byte %(byte)s of the line).") % {"byte": exc.start + 1})
            )
    raise NotUtf8Error(errors)


def import_format_detect(*, filename: str, head: str) -> str:
    """The format named by the file's extension, else guessed from its first character."""
    for extension, fmt in EXTENSIONS.items():
        if filename.lower().endswith(extension):
            return fmt
    return "jsonl" if head.lstrip().startswith("{") else "csv"


# Parsing: text → (line, InvoiceData) or a RowError per problem.


def _shown(value) -> object:
    """``value`` for a message: a long one (a whole file pasted in a cell) is cut short."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= 40:
        return value
    return text[:40] + "…"


def _parse_int(value, field: str) -> int:
    if isinstance(value, bool):
        raise ValueError(_("%(field)s must be a whole number.") % {"field": field})
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
        if len(value.strip().lstrip("-")) > MAX_DIGITS:
            raise ValueError(_("%(field)s has too many digits.") % {"field": field})
        return int(value.strip())
    raise ValueError(
        _("%(field)s must be a whole number, not %(value)r.") % {"field": field, "value": _shown(value)}
    )


def _parse_date(value, field: str) -> datetime.date:
    # fromisoformat alone also takes 20260105 and week dates: the shape is checked first.
    if isinstance(value, str) and _DATE.fullmatch(value.strip()):
        try:
            return datetime.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(
        _("%(field)s must be a date as YYYY-MM-DD, not %(value)r.") % {"field": field, "value": _shown(value)}
    )


def _parse_str(value, field: str) -> str:
    if not isinstance(value, str):
        raise ValueError(
            _("%(field)s must be text, not %(value)r.") % {"field": field, "value": _shown(value)}
        )
    return value.strip()


PARSERS = {
    "account_id": _parse_int,
    "number": _parse_str,
    "currency": _parse_str,
    "amount_minor": _parse_int,
    "issued_on": _parse_date,
    "due_on": _parse_date,
    "description": _parse_str,
}


def _row_from_mapping(record: dict, *, line: int) -> Row | list[RowError]:
    errors = []
    missing = [f for f in REQUIRED_FIELDS if record.get(f) in (None, "")]
    if missing:
        errors.append(RowError(line, _("missing %(fields)s.") % {"fields": ", ".join(missing)}))
    unknown = sorted(set(record) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS))
    if unknown:
        shown = ", ".join(str(_shown(name)) for name in unknown[:5])
        errors.append(RowError(line, _("unknown field(s) %(fields)s.") % {"fields": shown}))
    if errors:
        return errors
    values = {}
    for field, parse in PARSERS.items():
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
    except csv.Error as exc:
        yield 1, RowError(1, _("unreadable CSV: %(error)s") % {"error": exc})
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
                % {"expected": ",".join(REQUIRED_FIELDS), "header": _shown(",".join(header))},
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
    # Lines end at "\n" only: str.splitlines() would also break a record at a U+2028 in its text.
    for line, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            yield line, RowError(line, _("not valid JSON: %(error)s") % {"error": exc.msg})
            continue
        except (ValueError, RecursionError):
            # A number of thousands of digits, or arrays nested thousands deep.
            yield line, RowError(line, _("not valid JSON: too large or too deeply nested."))
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
                    % {"number": _shown(number), "line": first_line[number]},
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
