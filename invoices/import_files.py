"""Reading an invoice file: its text (UTF-8, by line), CSV or JSON lines, each row's values as an
``InvoiceData`` or a ``RowError`` per problem, with its line. What the values must be is the rules'
(``invoice_data_validate``); here only that each is there and of its type.
"""

import csv
import dataclasses
import datetime
import io
import json
import re
from collections.abc import Iterator

from django.utils.translation import gettext as _

from .services import InvoiceData

FORMATS = ("csv", "jsonl")
REQUIRED_FIELDS = ("account_id", "number", "currency", "amount_minor", "issued_on", "due_on")
OPTIONAL_FIELDS = ("description",)
EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}
# More digits than any amount or id can have; int() of a longer text is refused by Python itself.
MAX_DIGITS = 30
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


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


def shown(value) -> object:
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
        _("%(field)s must be a whole number, not %(value)r.") % {"field": field, "value": shown(value)}
    )


def _parse_date(value, field: str) -> datetime.date:
    # fromisoformat alone also takes 20260105 and week dates: the shape is checked first.
    if isinstance(value, str) and _DATE.fullmatch(value.strip()):
        try:
            return datetime.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(
        _("%(field)s must be a date as YYYY-MM-DD, not %(value)r.") % {"field": field, "value": shown(value)}
    )


def _parse_str(value, field: str) -> str:
    if not isinstance(value, str):
        raise ValueError(
            _("%(field)s must be text, not %(value)r.") % {"field": field, "value": shown(value)}
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
        names = ", ".join(str(shown(name)) for name in unknown[:5])
        errors.append(RowError(line, _("unknown field(s) %(fields)s.") % {"fields": names}))
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
                % {"expected": ",".join(REQUIRED_FIELDS), "header": shown(",".join(header))},
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
