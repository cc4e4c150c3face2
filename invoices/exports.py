"""The account's invoices as CSV rows, read in batches (see core.exports)."""

import re

from django.utils.translation import gettext_lazy as _

from accounts.selectors import scoped
from core.exports import major_units

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
    invoices = scoped(Invoice.objects.select_related("paid_by_method"), account=account)
    if status:
        invoices = invoices.filter(status=status)
    return invoices.order_by("-due_on", "-pk")


def invoice_rows(invoices):
    """One row per invoice, under INVOICE_HEADER; a server-side cursor where the database has one."""
    for invoice in invoices.iterator(chunk_size=BATCH):
        method = invoice.paid_by_method if invoice.status == Invoice.Status.PAID else None
        yield [
            invoice.number,
            invoice.issued_on,
            invoice.due_on,
            invoice.description,
            invoice.get_status_display(),
            major_units(invoice.amount_minor, invoice.currency),
            invoice.currency,
            invoice.paid_at if method else None,
            method.label if method else "",
        ]


def export_filename(prefix: str, account, suffix: str = "") -> str:
    """``invoices-acme-paid.csv``: ASCII only, for every browser's download bar."""
    name = "-".join(part for part in (prefix, str(account.pk), suffix) if part)
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name) + ".csv"
