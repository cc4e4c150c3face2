"""The settlement's bulk writes: every row gets its own values, on SQLite and PostgreSQL alike."""

import datetime

import pytest
from django.utils import timezone

from accounts.models import AuditEvent
from core.bulk import insert_rows, update_rows
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
