"""The database itself refuses data that would break the charge order or the money."""

import pytest
from django.apps import apps
from django.db import DataError, IntegrityError, connections, router, transaction

from invoices.models import Invoice
from payments.models import ChargeOrderEntry
from tests.factories import (
    AccountFactory,
    ChargeOrderEntryFactory,
    InvoiceFactory,
    PaymentAttemptFactory,
    PaymentMethodFactory,
)

pytestmark = pytest.mark.django_db


def test_a_method_cannot_sit_twice_in_a_charge_order():
    entry = ChargeOrderEntryFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        ChargeOrderEntry.objects.create(account=entry.account, method=entry.method, position=2)


def test_two_methods_cannot_hold_one_position():
    entry = ChargeOrderEntryFactory(position=1)
    other = PaymentMethodFactory(account=entry.account)
    with pytest.raises(IntegrityError), transaction.atomic():
        ChargeOrderEntry.objects.create(account=entry.account, method=other, position=1)


def test_position_starts_at_one():
    method = PaymentMethodFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        ChargeOrderEntry.objects.create(account=method.account, method=method, position=0)


def test_idempotency_key_is_unique():
    attempt = PaymentAttemptFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        PaymentAttemptFactory(invoice=attempt.invoice, idempotency_key=attempt.idempotency_key)


def test_one_success_per_invoice():
    invoice = InvoiceFactory()
    PaymentAttemptFactory(invoice=invoice, status="succeeded", decline_code="", decline_class="")
    with pytest.raises(IntegrityError), transaction.atomic():
        PaymentAttemptFactory(invoice=invoice, status="succeeded", decline_code="", decline_class="")


@pytest.mark.parametrize("amount", [0, -100])
def test_amounts_are_positive(amount):
    with pytest.raises(IntegrityError), transaction.atomic():
        InvoiceFactory(amount_minor=amount)


def test_amounts_are_integers_at_the_database():
    account = AccountFactory()
    with pytest.raises((IntegrityError, TypeError, ValueError)), transaction.atomic():
        InvoiceFactory(account=account, amount_minor="12.50")
    assert not Invoice.objects.filter(account=account).exists()


@pytest.mark.parametrize("currency", ["usd", "US", "EURO"])
def test_currency_is_iso_4217_shaped(currency):
    with pytest.raises((IntegrityError, DataError)), transaction.atomic():
        InvoiceFactory(currency=currency)


def test_a_paid_invoice_records_how_it_was_paid():
    with pytest.raises(IntegrityError), transaction.atomic():
        InvoiceFactory(status="paid")


@pytest.mark.django_db(databases="__all__")
def test_the_migrated_databases_have_every_constraint_and_index_the_models_declare():
    """Migrations can drop what a model still declares (turning a foreign key's index off once
    dropped the one-success constraint on PostgreSQL); the tables are what the models say."""
    missing = []
    for alias in connections:
        connection = connections[alias]
        with connection.cursor() as cursor:
            for model in apps.get_models():
                if router.allow_migrate_model(alias, model):
                    present = connection.introspection.get_constraints(cursor, model._meta.db_table)
                    declared = [*model._meta.constraints, *model._meta.indexes]
                    missing += [
                        f"{alias}: {model._meta.label}.{item.name}"
                        for item in declared
                        if item.name not in present
                    ]
    assert missing == []
