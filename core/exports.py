"""CSV downloads that stream: rows are written as they are read, so an export of any length takes
the memory of one batch.

UTF-8 with a byte order mark, which spreadsheet apps need to read anything but ASCII correctly;
money as decimal major units ("12.34", yen "1200", Kuwaiti dinar "1.234") beside its currency code.
"""

import csv
import datetime
import io
from collections.abc import Iterable, Iterator
from decimal import Decimal

from django.http import StreamingHttpResponse
from django.utils import timezone, translation

from .money import to_major

BOM = "\ufeff"
CHUNK_BYTES = 64 * 1024
# A text cell starting with one of these is a formula to a spreadsheet app ("=HYPERLINK(…)").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def major_units(amount_minor: int | None, currency: str) -> Decimal | str:
    """``1234, "USD"`` -> ``Decimal("12.34")``; None -> ""."""
    return "" if amount_minor is None else to_major(amount_minor, currency)


def cell(value) -> str:
    """One value as CSV text: dates and times in ISO 8601 (times in the active time zone), text
    that a spreadsheet would run as a formula quoted with a leading apostrophe."""
    if value is None:
        return ""
    if isinstance(value, datetime.datetime):
        return timezone.localtime(value).replace(microsecond=0).isoformat()
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, Decimal | int):
        return str(value)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_chunks(header: Iterable, rows: Iterable[Iterable]) -> Iterator[str]:
    """The CSV text of ``header`` and ``rows`` in pieces of about CHUNK_BYTES, the BOM first."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write(BOM)
    writer.writerow([str(name) for name in header])
    for row in rows:
        writer.writerow([cell(value) for value in row])
        if buffer.tell() >= CHUNK_BYTES:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _encoded(chunks: Iterator[str], language: str | None, zone) -> Iterator[bytes]:
    """The chunks as bytes, each made in the language and time zone of the request that asked for
    them: the response is sent after the view has returned, when neither may be active any more."""
    while True:
        with translation.override(language), timezone.override(zone):
            chunk = next(chunks, None)
        if chunk is None:
            return
        yield chunk.encode("utf-8")


def csv_response(*, filename: str, header: Iterable, rows: Iterable[Iterable]) -> StreamingHttpResponse:
    """A CSV download of ``rows`` (an iterator: read as the response is sent)."""
    chunks = csv_chunks(header, rows)
    response = StreamingHttpResponse(
        _encoded(chunks, translation.get_language(), timezone.get_current_timezone()),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    return response
