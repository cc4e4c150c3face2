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
