"""The account's invoices as CSV rows, read in batches (see core.exports)."""

import re

from django.utils.translation import gettext_lazy as _

from accounts.selectors import scoped
from core.exports import major_units
from payments.models import PaymentMethod

from .models import Invoice

BATCH = 2000

INVOICE_HEADER = [
    _("Invoice"),
    _("Issued"),
    _("Due"),
    _("Description"),
    _("Status"),
    _("Amount"),
    _("Currency"),
    _("Paid at"),
    _("Paid with"),
]


def invoices_to_export(account, *, status: str = ""):
    """The account's invoices with the list's filters, in the list's order (latest due first)."""
    invoices = scoped(Invoice.objects.all(), account=account)
    if status:
        invoices = invoices.filter(status=status)
    return invoices.order_by("-due_on", "-pk")


_COLUMNS = (
    "number",
    "issued_on",
    "due_on",
    "description",
    "status",
    "amount_minor",
    "currency",
    "paid_at",
    "paid_by_method__kind",
    "paid_by_method__brand",
    "paid_by_method__bank_name",
    "paid_by_method__last4",
)


def invoice_rows(invoices):
    """One row per invoice, under INVOICE_HEADER, read in batches (a server-side cursor where the
    database has one) as plain values: no model per row, so a long export stays quick."""
    statuses = {value: str(label) for value, label in Invoice.Status.choices}
    for row in invoices.values_list(*_COLUMNS).iterator(chunk_size=BATCH):
        number, issued_on, due_on, description, status, amount_minor, currency, paid_at, *method = row
        paid = status == Invoice.Status.PAID and method[0]
        yield [
            number,
            issued_on,
            due_on,
            description,
            statuses.get(status, status),
            major_units(amount_minor, currency),
            currency,
            paid_at if paid else None,
            _method_label(*method) if paid else "",
        ]


def _method_label(kind, brand, bank_name, last4) -> str:
    """What the console calls the method: its brand (or bank) and last 4 digits."""
    return PaymentMethod(kind=kind, brand=brand, bank_name=bank_name, last4=last4).label


def export_filename(prefix: str, account, suffix: str = "") -> str:
    """``invoices-acme-paid.csv``: ASCII only, for every browser's download bar."""
    name = "-".join(part for part in (prefix, str(account.pk), suffix) if part)
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name) + ".csv"
