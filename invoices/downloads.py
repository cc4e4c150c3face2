"""The console's downloads: an invoice as a PDF, the invoice list as CSV (with its filters)."""

from django.http import HttpResponse
from django.views import View

from accounts.selectors import get_for_account
from core.exports import csv_response
from core.views import MemberPage

from .documents import invoice_pdf, invoice_pdf_filename
from .exports import INVOICE_HEADER, export_filename, invoice_rows, invoices_to_export
from .models import Invoice
from .views import InvoiceFilterForm


def pdf_response(invoice: Invoice) -> HttpResponse:
    response = HttpResponse(invoice_pdf(invoice), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{invoice_pdf_filename(invoice)}"'
    response["Cache-Control"] = "private, no-store"
    return response


class InvoicePdfView(MemberPage, View):
    """The invoice as a PDF in the member's language, built now: it shows the invoice as it is."""

    http_method_names = ["get", "head"]

    def get(self, request, pk):
        invoice = get_for_account(
            Invoice.objects.select_related("account", "paid_by_method"), account=self.account, pk=pk
        )
        return pdf_response(invoice)


class InvoiceCsvView(MemberPage, View):
    """The invoice list as CSV, with the filters the list was showing."""

    http_method_names = ["get", "head"]

    def get(self, request):
        form = InvoiceFilterForm(request.GET or None)
        status = form.cleaned_data.get("status", "") if form.is_valid() else ""
        return csv_response(
            filename=export_filename("invoices", self.account, status),
            header=INVOICE_HEADER,
            rows=invoice_rows(invoices_to_export(self.account, status=status)),
        )
