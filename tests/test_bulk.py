"""The settlement's bulk writes: every row gets its own values, on SQLite and PostgreSQL alike."""

import datetime

import pytest
from django.utils import timezone

from accounts.models import AuditEvent
from core.bulk import copy_rows, insert_rows, update_rows
from invoices.models import Invoice
from tests.factories import AccountFactory, InvoiceFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("count", [1, 3])
def test_update_rows_writes_each_rows_own_values_nulls_and_dates_included(count):
    invoices = [InvoiceFactory() for _ in range(count)]
    untouched = InvoiceFactory()
    when = timezone.now().replace(microsecond=0)
    for i, invoice in enumerate(invoices):
        invoice.status = Invoice.Status.PAST_DUE
        invoice.retry_round = i + 1
        invoice.next_attempt_at = None if i % 2 else when + datetime.timedelta(days=i)
        invoice.lease_token = ""

    assert update_rows(invoices, ["status", "retry_round", "next_attempt_at", "lease_token"]) == count

    for i, invoice in enumerate(invoices):
        invoice.refresh_from_db()
        assert (invoice.status, invoice.retry_round) == (Invoice.Status.PAST_DUE, i + 1)
        assert invoice.next_attempt_at == (None if i % 2 else when + datetime.timedelta(days=i))
    before = untouched.status
    untouched.refresh_from_db()
    assert untouched.status == before


@pytest.mark.parametrize("count", [1, 3])
def test_insert_rows_sets_keys_and_auto_fields(count):
    account = AccountFactory()
    events = [
        AuditEvent(
            account=account, actor_label="settlement", action="invoice_paid", after={"n": i}, ip_address=None
        )
        for i in range(count)
    ]

    insert_rows(events)

    assert all(event.pk for event in events)
    stored = {e.pk: e for e in AuditEvent.objects.filter(pk__in=[e.pk for e in events])}
    for i, event in enumerate(events):
        assert stored[event.pk].after == {"n": i}
        assert stored[event.pk].created_at is not None


@pytest.mark.parametrize("count", [1, 3])
def test_copy_rows_returns_keys_in_order_and_fills_defaults_and_auto_fields(count):
    account = AccountFactory()
    due = timezone.now().replace(microsecond=0)
    after_values = [{"n": 0}, "text", [1, None]]
    keys = copy_rows(
        AuditEvent,
        [
            {
                "account_id": account.pk,
                "actor_label": "import",
                "action": "invoice.issued",
                "object_id": f"o{i}",
                "after": after_values[i],
                "ip_address": "192.0.2.1" if i == 1 else None,
            }
            for i in range(count)
        ],
    )
    invoice_keys = copy_rows(
        Invoice,
        [
            {
                "account_id": account.pk,
                "number": f"C-{i}",
                "currency": "JPY",
                "amount_minor": 10 + i,
                "issued_on": datetime.date(2026, 1, 1),
                "due_on": datetime.date(2026, 1, 2),
                "next_attempt_at": due,
            }
            for i in range(count)
        ],
    )

    assert len(keys) == count and all(keys)
    for i, key in enumerate(keys):
        event = AuditEvent.objects.get(pk=key)
        assert (event.object_id, event.after, event.before, event.user_agent) == (
            f"o{i}",
            after_values[i],
            None,
            "",
        )
        assert event.ip_address == ("192.0.2.1" if i == 1 else None)
        assert event.created_at is not None
    for i, key in enumerate(invoice_keys):
        invoice = Invoice.objects.get(pk=key)
        assert (invoice.number, invoice.amount_minor, invoice.next_attempt_at) == (f"C-{i}", 10 + i, due)
        assert (invoice.status, invoice.retry_round, invoice.lease_token, invoice.paid_by_backup) == (
            Invoice.Status.OPEN,
            0,
            "",
            False,
        )
        assert invoice.created_at is not None and invoice.updated_at is not None
    assert copy_rows(Invoice, []) == []
