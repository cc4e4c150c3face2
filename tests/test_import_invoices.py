"""import_invoices: CSV or JSON lines, every row checked first, all or nothing, idempotent on the number."""

import datetime
import io
import json
import sys

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import AuditEvent
from invoices.models import Invoice
from tests.factories import AccountFactory, InvoiceFactory

pytestmark = pytest.mark.django_db

HEADER = "account_id,number,currency,amount_minor,issued_on,due_on,description"


@pytest.fixture
def accounts():
    return AccountFactory(currency="USD"), AccountFactory(currency="EUR")


def write(tmp_path, content: str, name: str) -> str:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return str(path)


def run(tmp_path, content: str, name: str = "invoices.csv", *args) -> str:
    out = io.StringIO()
    call_command("import_invoices", write(tmp_path, content, name), *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def refused(tmp_path, content: str, name: str = "invoices.csv", *args) -> list[str]:
    """The problems printed for a refused file, one per line; asserts nothing was imported."""
    before = Invoice.objects.count()
    err = io.StringIO()
    with pytest.raises(CommandError, match="nothing was imported") as caught:
        call_command(
            "import_invoices", write(tmp_path, content, name), *args, stdout=io.StringIO(), stderr=err
        )
    assert caught.value.returncode == 1
    assert Invoice.objects.count() == before
    return [line for line in err.getvalue().splitlines() if line]


def record(account, **overrides) -> dict:
    """One JSON-lines record, valid unless ``overrides`` say otherwise."""
    fields = {"account_id": account.pk, "number": "J-1", "currency": "USD", "amount_minor": 100}
    return fields | {"issued_on": "2026-01-01", "due_on": "2026-01-02"} | overrides


def csv_rows(*rows: str) -> str:
    return "\n".join((HEADER, *rows)) + "\n"


def test_csv_happy_path(tmp_path, accounts):
    usd, eur = accounts
    out = run(
        tmp_path,
        csv_rows(
            f"{usd.pk},INV-1,USD,12500,2026-01-01,2026-01-15,Compute",
            f'{usd.pk},INV-2,JPY,1800,2026-01-01,2026-01-15,"Tokyo, region"',
            f"{eur.pk},INV-3,EUR,9900,2026-01-01,2026-01-31,",
        ),
    )

    assert "Created 3 invoice(s); 0 already present." in out
    invoice = Invoice.objects.get(number="INV-2")
    assert (invoice.account, invoice.currency, invoice.amount_minor) == (usd, "JPY", 1800)
    assert (invoice.issued_on, invoice.due_on) == (datetime.date(2026, 1, 1), datetime.date(2026, 1, 15))
    assert invoice.description == "Tokyo, region"
    assert invoice.status == Invoice.Status.OPEN and invoice.next_attempt_at is not None
    issued = AuditEvent.objects.filter(action=AuditEvent.Action.INVOICE_ISSUED)
    assert issued.count() == 3
    assert set(issued.values_list("actor_label", flat=True)) == {"import: invoices.csv"}


def test_csv_without_description_column_and_with_a_byte_order_mark(tmp_path, accounts):
    usd, _eur = accounts
    content = "\ufeffaccount_id,number,currency,amount_minor,issued_on,due_on\r\n"
    content += f"{usd.pk},INV-1,USD,100,2026-01-01,2026-01-02\r\n"
    out = run(tmp_path, content)
    assert "Created 1 invoice(s)" in out
    assert Invoice.objects.get(number="INV-1").description == ""


def test_jsonl_happy_path(tmp_path, accounts):
    usd, eur = accounts
    lines = [
        record(usd, number="J-1", amount_minor=500),
        record(eur, number="J-2", currency="KWD", amount_minor=1234, description="Gulf region"),
    ]
    out = run(tmp_path, "\n".join(json.dumps(line) for line in lines) + "\n\n", "batch.jsonl")
    assert "Created 2 invoice(s)" in out
    assert Invoice.objects.get(number="J-2").amount_minor == 1234


def test_reimport_is_idempotent(tmp_path, accounts):
    usd, _eur = accounts
    content = csv_rows(
        f"{usd.pk},INV-1,USD,100,2026-01-01,2026-01-02,a", f"{usd.pk},INV-2,USD,200,2026-01-01,2026-01-02,b"
    )
    run(tmp_path, content)

    out = run(tmp_path, content)

    assert "Created 0 invoice(s); 2 already present." in out
    assert Invoice.objects.count() == 2
    assert AuditEvent.objects.filter(action=AuditEvent.Action.INVOICE_ISSUED).count() == 2


def test_a_file_that_adds_to_earlier_invoices_creates_only_the_new_ones(tmp_path, accounts):
    usd, _eur = accounts
    InvoiceFactory(
        account=usd,
        number="INV-1",
        currency="USD",
        amount_minor=100,
        issued_on=datetime.date(2026, 1, 1),
        due_on=datetime.date(2026, 1, 2),
    )
    out = run(
        tmp_path,
        csv_rows(
            f"{usd.pk},INV-1,USD,100,2026-01-01,2026-01-02,", f"{usd.pk},INV-2,USD,5,2026-01-01,2026-01-02,"
        ),
    )
    assert "Created 1 invoice(s); 1 already present." in out


def test_standard_input_with_the_format_guessed_or_given(monkeypatch, accounts):
    usd, _eur = accounts
    for args, text in (
        ((), json.dumps(record(usd, number="S-1"))),
        (("--format", "csv"), csv_rows(f"{usd.pk},S-2,USD,1,2026-01-01,2026-01-01,")),
    ):
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
        out = io.StringIO()
        call_command("import_invoices", "-", *args, stdout=out)
        assert "Created 1 invoice(s)" in out.getvalue()
    assert set(Invoice.objects.values_list("number", flat=True)) == {"S-1", "S-2"}


def test_dry_run_checks_and_imports_nothing(tmp_path, accounts):
    usd, _eur = accounts
    out = run(tmp_path, csv_rows(f"{usd.pk},INV-1,USD,100,2026-01-01,2026-01-02,"), "a.csv", "--dry-run")
    assert "Would create 1 invoice(s)" in out
    assert not Invoice.objects.exists()


# Errors: each reported with its line, and nothing imported.


def test_every_csv_error_is_listed_with_its_line_and_nothing_is_imported(tmp_path, accounts):
    usd, eur = accounts
    InvoiceFactory(account=usd, number="TAKEN", currency="USD", amount_minor=100)
    content = csv_rows(
        f"{usd.pk},GOOD-1,USD,100,2026-01-01,2026-01-02,fine",  # line 2
        f"{usd.pk},BAD-AMOUNT,USD,12.50,2026-01-01,2026-01-02,",  # line 3
        f"{usd.pk},BAD-DATE,USD,100,01/02/2026,2026-01-02,",  # line 4
        f"{usd.pk},BAD-CURRENCY,usd,100,2026-01-01,2026-01-02,",  # line 5
        f"{usd.pk},ZERO,USD,0,2026-01-01,2026-01-02,",  # line 6
        f"{usd.pk},BACKWARDS,USD,100,2026-01-05,2026-01-02,",  # line 7
        "999999,NO-ACCOUNT,USD,100,2026-01-01,2026-01-02,",  # line 8
        f"{eur.pk},GOOD-1,EUR,100,2026-01-01,2026-01-02,",  # line 9: duplicate of line 2
        f"{usd.pk},TAKEN,USD,999,2026-01-01,2026-01-02,",  # line 10: exists with other details
        f"{usd.pk},SHORT,USD,100",  # line 11
        f"{usd.pk},,USD,100,2026-01-01,2026-01-02,",  # line 12
    )
    errors = refused(tmp_path, content)

    by_line = {}
    for error in errors:
        line, _, message = error.partition(": ")
        by_line.setdefault(int(line.removeprefix("line ")), []).append(message)
    assert sorted(by_line) == [3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    assert "amount_minor must be a whole number" in by_line[3][0]
    assert "issued_on must be a date as YYYY-MM-DD" in by_line[4][0]
    assert "ISO 4217" in by_line[5][0]
    assert "positive whole number" in by_line[6][0]
    assert "due date must not be before the issue date" in by_line[7][0]
    assert by_line[8] == ["account 999999 does not exist."]
    assert by_line[9] == ["invoice GOOD-1 already appears on line 2."]
    assert by_line[10] == ["invoice TAKEN already exists with different details."]
    assert by_line[11] == ["expected 7 values, found 4."]
    assert by_line[12] == ["missing number."]


def test_a_bad_csv_header_is_line_one(tmp_path):
    errors = refused(
        tmp_path, "account,number,currency,amount,issued_on,due_on\n1,A,USD,1,2026-01-01,2026-01-01\n"
    )
    assert len(errors) == 1 and errors[0].startswith("line 1: the header must be account_id,number")


def test_every_jsonl_error_is_listed_with_its_line(tmp_path, accounts):
    usd, _eur = accounts
    good = record(usd)
    lines = [
        json.dumps(good),  # line 1
        "",  # line 2: blank lines are allowed
        "{not json",  # line 3
        json.dumps([1, 2]),  # line 4
        json.dumps({**good, "number": "J-2", "amount_minor": 12.5}),  # line 5
        json.dumps({**good, "number": "J-3", "amount": 100}),  # line 6: unknown key
        json.dumps(
            {key: value for key, value in good.items() if key != "due_on"} | {"number": "J-4"}
        ),  # line 7
        json.dumps({**good, "number": "J-5", "amount_minor": True}),  # line 8
        json.dumps(good),  # line 9: duplicate of line 1
    ]
    errors = refused(tmp_path, "\n".join(lines), "batch.jsonl")

    lines_reported = [int(error.split(":")[0].removeprefix("line ")) for error in errors]
    assert lines_reported == [3, 4, 5, 6, 7, 8, 9]
    assert "not valid JSON" in errors[0]
    assert "must be a JSON object" in errors[1]
    assert "amount_minor must be a whole number" in errors[2]
    assert "unknown field(s) amount" in errors[3]
    assert "missing due_on" in errors[4]
    assert "amount_minor must be a whole number" in errors[5]
    assert "already appears on line 1" in errors[6]


def test_one_bad_row_refuses_the_whole_file(tmp_path, accounts):
    usd, _eur = accounts
    rows = [f"{usd.pk},OK-{n},USD,100,2026-01-01,2026-01-02," for n in range(20)]
    errors = refused(tmp_path, csv_rows(*rows, f"{usd.pk},OK-bad,USD,-1,2026-01-01,2026-01-02,"))
    assert len(errors) == 1 and errors[0].startswith("line 22: ")


def test_the_format_comes_from_the_option_then_the_extension_then_the_content(tmp_path, accounts):
    usd, _eur = accounts
    line = json.dumps(record(usd, number="F-1"))
    out = run(tmp_path, line, "export.txt")
    assert "Created 1 invoice(s)" in out
    # Told it is CSV, the same JSON line is a bad header.
    errors = refused(tmp_path, line, "export.txt", "--format", "csv")
    assert errors[0].startswith("line 1: the header must be")


def test_an_unreadable_file_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("import_invoices", str(tmp_path / "missing.csv"))
    (tmp_path / "latin1.csv").write_bytes(HEADER.encode() + b"\n1,\xe9,USD,1,2026-01-01,2026-01-01,\n")
    with pytest.raises(CommandError, match="not UTF-8"):
        call_command("import_invoices", str(tmp_path / "latin1.csv"))
    assert refused(tmp_path, "") == ["line 1: the file is empty; expected a header line."]


def test_an_unknown_currency_code_is_refused():
    from invoices.services import InvoiceData, invoice_data_validate

    data = InvoiceData(
        account_id=1,
        number="X-1",
        currency="XYZ",
        amount_minor=100,
        issued_on=datetime.date(2026, 11, 1),
        due_on=datetime.date(2026, 11, 30),
    )
    assert any(
        problem.field == "currency" and "XYZ" in problem.message for problem in invoice_data_validate(data)
    )


# What a file can hold: every value is checked before anything is written, each problem is listed with
# its line (and the column, when the rule does not name it), exit 1, nothing imported.

GOOD_ROW = "{account},GOOD-1,USD,100,2026-01-01,2026-01-02,fine"


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (
            "{account},BIG,USD,9223372036854775808,2026-01-01,2026-01-02,",
            "amount_minor: The amount must be at most",
        ),
        (
            "{account},BIG,USD,9223372036854775807,2026-01-01,2026-01-02,",
            "amount_minor: The amount must be at most",
        ),
        ("{account},HUGE,USD," + "9" * 40 + ",2026-01-01,2026-01-02,", "amount_minor has too many digits"),
        (
            "{account},LONG,USD,100,2026-01-01,2026-01-02," + "x" * 301,
            "description: The description must be at most 300",
        ),
        (
            "{account},NUL\x00IN-NUMBER,USD,100,2026-01-01,2026-01-02,",
            "number: The invoice number must not contain the character U+0000",
        ),
        (
            "{account},ESC\x1b,USD,100,2026-01-01,2026-01-02,",
            "number: The invoice number must not contain the character U+001B",
        ),
        (
            "{account},RTL\u202eX,USD,100,2026-01-01,2026-01-02,",
            "number: The invoice number must not contain the character U+202E",
        ),
        (
            "{account},NUL-TEXT,USD,100,2026-01-01,2026-01-02,a\x00b",
            "description: The description must not contain the character U+0000",
        ),
        (
            "{account},BELL-TEXT,USD,100,2026-01-01,2026-01-02,a\x07b",
            "description: The description must not contain the character U+0007",
        ),
        (
            '{account},LF-TEXT,USD,100,2026-01-01,2026-01-02,"two\nlines"',
            "description: The description must not contain the character U+000A",
        ),
        (
            "{account},FEB,USD,100,2026-02-30,2026-03-02,",
            "issued_on must be a date as YYYY-MM-DD, not '2026-02-30'",
        ),
        (
            "{account},BASIC,USD,100,20260101,2026-01-02,",
            "issued_on must be a date as YYYY-MM-DD, not '20260101'",
        ),
        ("{account},WEEK,USD,100,2026-W01-1,2026-01-02,", "issued_on must be a date as YYYY-MM-DD"),
        (
            "{account},YEAR-1,USD,100,0001-01-01,2026-01-02,",
            "issued_on: The issue date must be between 1970-01-01 and 9998-12-31",
        ),
        (
            "{account},YEAR-9999,USD,100,2026-01-01,9999-12-31,",
            "due_on: The due date must be between 1970-01-01 and 9998-12-31",
        ),
        ("{account},XYZ,XYZ,100,2026-01-01,2026-01-02,", "currency: XYZ is not a known currency"),
        ("{account},XXX,XXX,100,2026-01-01,2026-01-02,", "currency: XXX is not a known currency"),
        ("{account},GOLD,XAU,100,2026-01-01,2026-01-02,", "currency: XAU is not a known currency"),
        (
            "{account},NUL-CUR,U\x00D,100,2026-01-01,2026-01-02,",
            "currency: The currency must be an ISO 4217 code",
        ),
        ("{account},WIDE,USD,１００,2026-01-01,2026-01-02,", "amount_minor must be a whole number"),
        (
            "99999999999999999999,NO-SUCH-ID,USD,100,2026-01-01,2026-01-02,",
            "account_id: The account must be given by its id",
        ),
        ("-3,NEGATIVE-ID,USD,100,2026-01-01,2026-01-02,", "account_id: The account must be given by its id"),
        ("424242,NO-ACCOUNT,USD,100,2026-01-01,2026-01-02,", "account 424242 does not exist."),
        ("{account},GOOD-1,USD,100,2026-01-01,2026-01-02,fine", "invoice GOOD-1 already appears on line 2."),
        (
            "{account}," + "N" * 65 + ",USD,100,2026-01-01,2026-01-02,",
            "number: The invoice number must be 1 to 64 characters",
        ),
    ],
)
def test_each_bad_csv_value_is_refused_with_its_line(tmp_path, accounts, row, expected):
    usd, _eur = accounts
    content = csv_rows(
        GOOD_ROW.format(account=usd.pk),
        row.format(account=usd.pk),
        GOOD_ROW.replace("GOOD-1", "GOOD-2").format(account=usd.pk),
    )
    errors = refused(tmp_path, content)
    assert len(errors) == 1, errors
    assert errors[0].startswith("line 3: ") and expected in errors[0], errors
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.INVOICE_ISSUED).exists()


def test_a_csv_without_a_required_column_is_refused_on_line_one(tmp_path, accounts):
    usd, _eur = accounts
    errors = refused(
        tmp_path, f"account_id,number,currency,amount_minor,issued_on\n{usd.pk},A,USD,1,2026-01-01\n"
    )
    assert len(errors) == 1 and errors[0].startswith("line 1: the header must be"), errors


def test_a_csv_field_too_large_for_the_reader_is_refused_with_its_line(tmp_path, accounts):
    usd, _eur = accounts
    content = csv_rows(
        GOOD_ROW.format(account=usd.pk), f"{usd.pk},BIG,USD,1,2026-01-01,2026-01-02,{'x' * 200_000}"
    )
    errors = refused(tmp_path, content)
    assert len(errors) == 1 and errors[0].startswith("line 3: unreadable CSV"), errors


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"amount_minor": 2**63}, "amount_minor: The amount must be at most"),
        ({"amount_minor": 10**400}, "amount_minor: The amount must be at most"),
        ({"amount_minor": 1e30}, "amount_minor must be a whole number"),
        ({"amount_minor": "1e3"}, "amount_minor must be a whole number"),
        ({"number": "J\u0000X"}, "number: The invoice number must not contain the character U+0000"),
        ({"number": "J\ud800X"}, "number: The invoice number must not contain the character U+D800"),
        ({"number": 7}, "number must be text, not 7"),
        (
            {"description": "x" * 5000},
            "description: The description must be at most 300 characters, not 5000",
        ),
        ({"description": "a\u2028b"}, "description: The description must not contain the character U+2028"),
        ({"description": ["a list"]}, "description must be text"),
        ({"account_id": 2**70}, "account_id: The account must be given by its id"),
        ({"account_id": "12abc"}, "account_id must be a whole number"),
        ({"issued_on": "2026-13-01"}, "issued_on must be a date as YYYY-MM-DD"),
        ({"due_on": 20260102}, "due_on must be a date as YYYY-MM-DD"),
        ({"currency": "EURO"}, "currency: The currency must be an ISO 4217 code"),
        ({"currency": None}, "missing currency"),
    ],
)
def test_each_bad_jsonl_value_is_refused_with_its_line(tmp_path, accounts, overrides, expected):
    usd, _eur = accounts
    lines = [
        json.dumps(record(usd, number="J-1")),
        json.dumps(record(usd, number="J-2") | overrides),
        json.dumps(record(usd, number="J-3")),
    ]
    errors = refused(tmp_path, "\n".join(lines) + "\n", "batch.jsonl")
    assert len(errors) == 1, errors
    assert errors[0].startswith("line 2: ") and expected in errors[0], errors


def test_jsonl_lines_end_only_at_a_newline(tmp_path, accounts):
    """A raw U+2028 or form feed inside a record's text does not split it: line numbers stay true."""
    usd, _eur = accounts
    lines = [
        json.dumps(record(usd, number="J-1", description="a\u2028b"), ensure_ascii=False),
        json.dumps(record(usd, number="J-2", amount_minor=0)),
    ]
    errors = refused(tmp_path, "\n".join(lines) + "\n", "batch.jsonl")
    assert [error.split(":")[0] for error in errors] == ["line 1", "line 2"], errors


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("[" * 100_000 + "]" * 100_000, "not valid JSON: too large or too deeply nested"),
        ('{"amount_minor": ' + "9" * 5000 + "}", "not valid JSON: too large or too deeply nested"),
        ('{"number": "J-2",', "not valid JSON"),
    ],
)
def test_json_the_parser_cannot_take_is_refused_with_its_line(tmp_path, accounts, raw, expected):
    usd, _eur = accounts
    errors = refused(tmp_path, json.dumps(record(usd)) + "\n" + raw + "\n", "batch.jsonl")
    assert len(errors) == 1 and errors[0].startswith(f"line 2: {expected}"), errors


def test_bad_utf8_is_refused_with_each_line_and_nothing_imported(tmp_path, accounts):
    usd, _eur = accounts
    prefix = f"{usd.pk},OK-2,USD,100,2026-01-01,2026-01-02,"
    content = csv_rows(
        f"{usd.pk},OK-1,USD,100,2026-01-01,2026-01-02,fine",
        prefix + "caf\udce9",  # Latin-1 é
        f"{usd.pk},OK-3,USD,100,2026-01-01,2026-01-02,fine",
        prefix.replace("OK-2", "OK-4") + "\udcff\udcfe",
    ).encode("utf-8", "surrogateescape")
    path = tmp_path / "latin1.csv"
    path.write_bytes(content)
    err = io.StringIO()
    with pytest.raises(CommandError, match=r"latin1\.csv is not UTF-8 text; nothing was imported") as caught:
        call_command("import_invoices", str(path), stdout=io.StringIO(), stderr=err)
    assert caught.value.returncode == 1
    assert err.getvalue().splitlines() == [
        f"line 3: not UTF-8 text (byte {len(prefix) + 4} of the line).",
        f"line 5: not UTF-8 text (byte {len(prefix) + 1} of the line).",
    ]
    assert not Invoice.objects.exists()


def test_a_bad_last_row_of_a_long_file_refuses_it_before_any_insert(
    tmp_path, accounts, django_assert_max_num_queries
):
    usd, _eur = accounts
    rows = [f"{usd.pk},ROW-{n},USD,100,2026-01-01,2026-01-02," for n in range(3000)]
    path = write(
        tmp_path, csv_rows(*rows, f"{usd.pk},ROW-last,USD,100,2026-01-01,2026-01-02,\x00"), "long.csv"
    )
    # One lookup of the accounts and four of the 3,001 numbers (1,000 a query): none per row, no insert.
    with django_assert_max_num_queries(5) as captured, pytest.raises(CommandError):
        call_command("import_invoices", path, stdout=io.StringIO(), stderr=io.StringIO())
    assert not any("INSERT" in query["sql"] for query in captured.captured_queries)
    assert not Invoice.objects.exists()


def test_a_clean_file_is_written_in_a_few_statements_with_its_audit_events(
    tmp_path, accounts, django_assert_max_num_queries
):
    usd, eur = accounts
    rows = [
        f"{(usd if n % 2 else eur).pk},ROW-{n},EUR,{n + 1},2026-01-01,2026-01-02,d{n}" for n in range(1200)
    ]
    path = write(tmp_path, csv_rows(*rows), "many.csv")
    with django_assert_max_num_queries(20):
        call_command("import_invoices", path, stdout=io.StringIO())
    assert Invoice.objects.count() == 1200
    invoice = Invoice.objects.get(number="ROW-7")
    assert (invoice.account, invoice.amount_minor, invoice.description) == (usd, 8, "d7")
    assert invoice.next_attempt_at is not None and invoice.status == Invoice.Status.OPEN
    event = AuditEvent.objects.get(action=AuditEvent.Action.INVOICE_ISSUED, object_id=str(invoice.pk))
    assert (event.account, event.actor_label, event.object_type) == (usd, "import: many.csv", "invoice")
    assert event.after == {"number": "ROW-7", "amount_minor": 8, "currency": "EUR"}
    assert AuditEvent.objects.filter(action=AuditEvent.Action.INVOICE_ISSUED).count() == 1200


# The largest amount: BILLING_MAX_INVOICE_AMOUNT major units, in each currency's own minor unit.

AMOUNT_LIMITS = [("USD", 100_000_000), ("JPY", 1_000_000), ("KWD", 1_000_000_000)]


@pytest.mark.parametrize(("currency", "highest"), AMOUNT_LIMITS)
def test_the_largest_amount_is_the_maximum_in_the_currencys_minor_unit(tmp_path, accounts, currency, highest):
    usd, _eur = accounts
    at_max = json.dumps(record(usd, number="AT", currency=currency, amount_minor=highest))
    out = run(tmp_path, at_max + "\n", "at.jsonl")
    assert "Created 1 invoice(s)" in out
    assert Invoice.objects.get(number="AT").amount_minor == highest

    over = json.dumps(record(usd, number="OVER", currency=currency, amount_minor=highest + 1))
    errors = refused(tmp_path, over + "\n", "over.jsonl")
    assert len(errors) == 1 and errors[0].startswith("line 1: amount_minor: The amount must be at most"), (
        errors
    )
    assert f"({highest} in minor units)" in errors[0]


def test_the_maximum_follows_the_setting(tmp_path, accounts, settings):
    usd, _eur = accounts
    settings.BILLING_MAX_INVOICE_AMOUNT = 50
    errors = refused(tmp_path, csv_rows(f"{usd.pk},A,USD,5001,2026-01-01,2026-01-02,"))
    assert errors == ["line 2: amount_minor: The amount must be at most $50.00 (5000 in minor units)."]
    assert "Created 1" in run(tmp_path, csv_rows(f"{usd.pk},A,USD,5000,2026-01-01,2026-01-02,"))


@pytest.mark.parametrize("value", ["lots", "0", "1000000000001"])
def test_a_bad_maximum_stops_start_up_naming_the_setting(value):
    from tests.test_settings import start

    result = start(BILLING_MAX_INVOICE_AMOUNT=value)
    assert result.returncode != 0
    assert "BILLING_MAX_INVOICE_AMOUNT" in result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("same_details", [True, False])
def test_a_number_issued_by_another_writer_after_the_check(tmp_path, accounts, monkeypatch, same_details):
    """Checked, then someone else issues one of the numbers: the insert fails whole, the rows are
    checked again, and the number is either found identical (imported as already present) or refused."""
    from invoices import importing

    usd, _eur = accounts
    real_check, calls = importing.invoice_rows_check, []

    def check_then_race(rows):
        checked = real_check(rows)
        if not calls:
            InvoiceFactory(
                account=usd,
                number="R-2",
                currency="USD",
                amount_minor=200 if same_details else 999,
                issued_on=datetime.date(2026, 1, 1),
                due_on=datetime.date(2026, 1, 2),
            )
        calls.append(checked)
        return checked

    monkeypatch.setattr(importing, "invoice_rows_check", check_then_race)
    content = csv_rows(
        f"{usd.pk},R-1,USD,100,2026-01-01,2026-01-02,", f"{usd.pk},R-2,USD,200,2026-01-01,2026-01-02,"
    )
    if same_details:
        assert "Created 1 invoice(s); 1 already present." in run(tmp_path, content)
        assert len(calls) == 2
        assert AuditEvent.objects.filter(action=AuditEvent.Action.INVOICE_ISSUED).count() == 1
    else:
        err = io.StringIO()
        with pytest.raises(CommandError, match="nothing was imported"):
            call_command(
                "import_invoices", write(tmp_path, content, "r.csv"), stdout=io.StringIO(), stderr=err
            )
        assert err.getvalue().splitlines() == ["line 3: invoice R-2 already exists with different details."]
        assert set(Invoice.objects.values_list("number", flat=True)) == {"R-2"}  # the other writer's alone
        assert not AuditEvent.objects.filter(action=AuditEvent.Action.INVOICE_ISSUED).exists()
