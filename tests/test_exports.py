"""CSV exports of the invoice list (with its filters) and the activity log: read back as a
spreadsheet app would, scoped to the account, and streamed in constant memory."""

import csv
import datetime
import io
import tracemalloc

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import AuditEvent, Membership, Profile
from invoices.models import Invoice, PaymentAttempt
from tests.factories import (
    AccountFactory,
    AuditEventFactory,
    InvoiceFactory,
    MembershipFactory,
    PaymentAttemptFactory,
    PaymentMethodFactory,
    TokenFactory,
)

pytestmark = pytest.mark.django_db

BOM = "\ufeff".encode()


def read_csv(response) -> list[list[str]]:
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response.streaming, "exports stream"
    body = b"".join(response.streaming_content)
    assert body.startswith(BOM), "a byte order mark, so spreadsheet apps read UTF-8"
    return list(csv.reader(io.StringIO(body.decode("utf-8").removeprefix("\ufeff"))))


@pytest.fixture
def account():
    return AccountFactory(name="Acme", currency="USD")


@pytest.fixture
def member(client, account):
    membership = MembershipFactory(account=account, role=Membership.Role.VIEWER)
    client.force_login(membership.user)
    return membership


def _paid(invoice, *, brand="Visa", last4="4242", when):
    method = PaymentMethodFactory(account=invoice.account, brand=brand, last4=last4)
    attempt = PaymentAttemptFactory(
        invoice=invoice, method=method, status=PaymentAttempt.Status.SUCCEEDED, decline_code=""
    )
    Invoice.objects.filter(pk=invoice.pk).update(
        status=Invoice.Status.PAID, paid_at=when, paid_by_attempt=attempt, paid_by_method=method
    )


@pytest.fixture
def invoices(account):
    day = datetime.date(2026, 11, 1)
    usd = InvoiceFactory(
        account=account,
        number="INV-USD",
        amount_minor=1_234,
        currency="USD",
        description="Compute, November",
        issued_on=day,
        due_on=day + datetime.timedelta(days=14),
    )
    jpy = InvoiceFactory(
        account=account,
        number="INV-JPY",
        amount_minor=1_200,
        currency="JPY",
        description='=HYPERLINK("https://evil.example")',
        issued_on=day,
        due_on=day + datetime.timedelta(days=10),
    )
    kwd = InvoiceFactory(
        account=account,
        number="INV-KWD",
        amount_minor=1_234,
        currency="KWD",
        description="ストレージ, 11月",
        issued_on=day,
        due_on=day + datetime.timedelta(days=5),
        status=Invoice.Status.PAST_DUE,
    )
    _paid(usd, when=datetime.datetime(2026, 11, 15, 9, 30, 5, 123456, tzinfo=datetime.UTC))
    InvoiceFactory(number="INV-OTHER-ACCOUNT")
    return usd, jpy, kwd


def test_the_invoice_list_exports_every_invoice_as_csv(client, member, invoices):
    rows = read_csv(client.get(reverse("invoices_export")))
    assert rows[0] == [
        "Invoice",
        "Issued",
        "Due",
        "Description",
        "Status",
        "Amount",
        "Currency",
        "Paid at",
        "Paid with",
    ]
    # The list's order, latest due first; amounts in major units beside their currency; another
    # account's invoice nowhere.
    assert rows[1:] == [
        [
            "INV-USD",
            "2026-11-01",
            "2026-11-15",
            "Compute, November",
            "Paid",
            "12.34",
            "USD",
            "2026-11-15T09:30:05+00:00",
            "Visa •••• 4242",
        ],
        [
            "INV-JPY",
            "2026-11-01",
            "2026-11-11",
            '\'=HYPERLINK("https://evil.example")',  # not a formula to a spreadsheet app
            "Open",
            "1200",
            "JPY",
            "",
            "",
        ],
        ["INV-KWD", "2026-11-01", "2026-11-06", "ストレージ, 11月", "Past due", "1.234", "KWD", "", ""],
    ]


def test_the_export_keeps_the_lists_filter_and_the_members_language_and_zone(client, member, invoices):
    Profile.objects.create(user=member.user, language="ja", time_zone="Asia/Tokyo")
    response = client.get(reverse("invoices_export"), {"status": "paid"})
    assert response["Content-Disposition"] == f'attachment; filename="invoices-{member.account_id}-paid.csv"'
    rows = read_csv(response)
    assert rows[0][:3] == ["請求書", "発行日", "支払期日"]
    assert rows[1:] == [
        [
            "INV-USD",
            "2026-11-01",
            "2026-11-15",
            "Compute, November",
            "支払い済み",
            "12.34",
            "USD",
            "2026-11-15T18:30:05+09:00",
            "Visa •••• 4242",
        ]
    ]
    # An unknown status is no filter, as on the list itself.
    assert len(read_csv(client.get(reverse("invoices_export"), {"status": "bogus"}))) == 4


def test_the_invoice_list_links_to_the_export_with_its_filter(client, member, invoices):
    page = client.get(reverse("invoices"), {"status": "past_due"}).content.decode()
    assert f'href="{reverse("invoices_export")}?status=past_due"' in page
    assert f'href="{reverse("invoices_export")}"' in client.get(reverse("invoices")).content.decode()


def test_the_api_exports_the_invoices_with_the_same_filter(account, invoices):
    membership = MembershipFactory(account=account, role=Membership.Role.OWNER)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {TokenFactory(user=membership.user).key}")
    rows = read_csv(api.get("/api/invoices/export/", {"status": "past_due"}, HTTP_ACCEPT="text/csv"))
    assert [row[0] for row in rows[1:]] == ["INV-KWD"]
    assert [row[0] for row in read_csv(api.get("/api/invoices/export/"))[1:]] == [
        "INV-USD",
        "INV-JPY",
        "INV-KWD",
    ]
    refused = api.get("/api/invoices/export/", {"status": "bogus"}, HTTP_ACCEPT="text/csv")
    assert refused.status_code == 400 and refused["Content-Type"] == "application/json"
    assert "status" in refused.content.decode()
    assert APIClient().get("/api/invoices/export/").status_code == 401


def test_the_activity_log_exports_every_event_in_plain_words(client, member, account, invoices):
    usd = invoices[0]
    method = PaymentMethodFactory(account=account, brand="Visa", last4="1111")
    when = datetime.datetime(2026, 11, 20, 8, 0, tzinfo=datetime.UTC)
    for minutes, (action, kwargs) in enumerate(
        [
            (
                AuditEvent.Action.ORDER_CHANGED,
                {"before": {"order": []}, "after": {"order": [method.pk]}, "actor_label": "alice"},
            ),
            (
                AuditEvent.Action.INVOICE_PAID,
                {
                    "object_type": "invoice",
                    "object_id": str(usd.pk),
                    "before": {"status": "open"},
                    "after": {"status": "paid"},
                    "actor_label": "settlement",
                },
            ),
        ]
    ):
        event = AuditEventFactory(account=account, action=action, ip_address="203.0.113.9", **kwargs)
        AuditEvent.objects.filter(pk=event.pk).update(created_at=when + datetime.timedelta(minutes=minutes))
    AuditEventFactory(actor_label="someone-else")  # another account's

    response = client.get(reverse("activity_export"))
    assert response["Content-Disposition"] == f'attachment; filename="activity-{account.pk}.csv"'
    rows = read_csv(response)
    assert rows == [
        ["When", "Event", "Details", "By", "IP address"],
        [
            "2026-11-20T08:01:00+00:00",
            "Invoice paid",
            "Invoice INV-USD: Open → Paid",
            "Automatic payment run",
            "203.0.113.9",
        ],
        [
            "2026-11-20T08:00:00+00:00",
            "Charge order changed",
            "empty → Primary: Visa •••• 1111",
            "alice",
            "203.0.113.9",
        ],
    ]
    assert f'href="{reverse("activity_export")}"' in client.get(reverse("activity")).content.decode()


def test_signed_out_the_exports_redirect_to_sign_in(client):
    for name in ("invoices_export", "activity_export"):
        response = client.get(reverse(name))
        assert response.status_code == 302 and reverse("login") in response["Location"]


# Memory -------------------------------------------------------------------------------------------


def _add_invoices(account, start: int, count: int) -> None:
    """``count`` invoices, generated by the database itself (a recursive query): the test is about
    reading them, and making 100,000 model instances would take longer than the export."""
    table = connection.ops.quote_name(Invoice._meta.db_table)
    day = timezone.localdate().isoformat()
    now = timezone.now().isoformat()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH RECURSIVE seq(n) AS (SELECT CAST(%s AS integer) UNION ALL SELECT n + 1 FROM seq WHERE n < %s)
            INSERT INTO {table} (account_id, number, currency, amount_minor, description, issued_on,
                due_on, status, retry_round, lease_token, lease_owner, paid_by_backup, created_at,
                updated_at)
            SELECT %s, 'INV-' || CAST(n AS VARCHAR(12)), 'KWD', 1000 + n,
                'Usage ' || CAST(n AS VARCHAR(12)), %s, %s, 'open', 0, '', '', %s, %s, %s
            FROM seq
            """,
            [start, start + count - 1, account.pk, day, day, False, now, now],
        )
    assert Invoice.objects.filter(account=account).count() == start + count


@pytest.fixture
def ids_restored():
    """PostgreSQL's sequences ignore rollbacks: put the invoice and audit event id sequences back
    where they were, so this test's many rows leave no gap in the ids of the tests after it."""
    if connection.vendor != "postgresql":
        yield
        return
    saved = []
    with connection.cursor() as cursor:
        for model in (Invoice, AuditEvent):
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [model._meta.db_table])
            (sequence,) = cursor.fetchone()
            cursor.execute(f"SELECT last_value, is_called FROM {sequence}")
            saved.append((sequence, *cursor.fetchone()))
    yield
    with connection.cursor() as cursor:
        for sequence, last_value, is_called in saved:
            cursor.execute("SELECT setval(%s, %s, %s)", [sequence, last_value, is_called])


def _peak_while_downloading(client, url) -> tuple[int, int]:
    """(rows read back, peak bytes allocated while the export was made and read)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        response = client.get(url)
        rows, tail = 0, b""
        for chunk in response.streaming_content:
            data = tail + chunk
            lines = data.split(b"\r\n")
            tail = lines.pop()
            rows += len(lines)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return rows - 1, peak  # less the header


def test_the_invoice_export_takes_the_same_memory_for_100000_rows_as_for_10000(
    client, member, account, ids_restored
):
    _add_invoices(account, 0, 10_000)
    rows, small = _peak_while_downloading(client, reverse("invoices_export"))
    assert rows == 10_000
    _add_invoices(account, 10_000, 90_000)
    rows, large = _peak_while_downloading(client, reverse("invoices_export"))
    assert rows == 100_000
    # Ten times the rows, about the same peak: one batch at a time (loading every row would take
    # tens of megabytes more).
    assert large < small * 1.5 + 256 * 1024, (small, large)
    assert large < 16 * 1024 * 1024


def _add_events(account, invoice, count: int) -> None:
    """``count`` "invoice paid" events, generated by the database (see ``_add_invoices``)."""
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    json = "CAST(%s AS jsonb)" if connection.vendor == "postgresql" else "%s"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < %s)
            INSERT INTO {table} (account_id, actor_label, action, object_type, object_id, before, after,
                user_agent, created_at)
            SELECT %s, 'settlement', 'invoice.paid', 'invoice', %s, {json}, {json}, '', %s
            FROM seq
            """,
            [count, account.pk, str(invoice.pk), '{"status": "open"}', '{"status": "paid"}', timezone.now()],
        )


def test_the_activity_export_takes_the_same_memory_for_ten_times_the_events(
    client, member, account, ids_restored
):
    # Fewer rows than the invoice export's test (each event's words take longer to make), still
    # two batches against fifteen.
    invoice = InvoiceFactory(account=account, number="INV-LOG")
    _add_events(account, invoice, 3_000)
    rows, small = _peak_while_downloading(client, reverse("activity_export"))
    assert rows == 3_000
    _add_events(account, invoice, 27_000)
    rows, large = _peak_while_downloading(client, reverse("activity_export"))
    assert rows == 30_000
    assert large < small * 1.5 + 256 * 1024, (small, large)


def test_the_activity_export_names_the_invoice_in_every_batch(client, member, account, ids_restored):
    invoice = InvoiceFactory(account=account, number="INV-LOG")
    _add_events(account, invoice, 2_500)  # two batches
    rows = read_csv(client.get(reverse("activity_export")))
    assert len(rows) == 2_501
    assert {tuple(row[1:4]) for row in rows[1:]} == {
        ("Invoice paid", "Invoice INV-LOG: Open → Paid", "Automatic payment run")
    }
