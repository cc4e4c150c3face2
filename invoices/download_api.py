"""API downloads: an invoice as a PDF, the invoice list as CSV. Each answers in its own format when
it succeeds and in JSON when it does not, whatever the client said it accepts."""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from accounts.api_access import ACCOUNT_PERMISSIONS, AccountScopedSchema, request_account
from accounts.selectors import get_for_account
from core.api import error_responses, id_parameter
from core.exports import csv_response

from .downloads import pdf_response
from .exports import INVOICE_HEADER, export_filename, invoice_rows, invoices_to_export
from .models import Invoice
from .serializers import InvoiceFilterSerializer


class DownloadNegotiation(BaseContentNegotiation):
    """A file is its own format: the only renderer left to choose is the errors' JSON."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class DownloadApi(APIView):
    schema = AccountScopedSchema()
    permission_classes = ACCOUNT_PERMISSIONS
    renderer_classes = [JSONRenderer]
    content_negotiation_class = DownloadNegotiation


@extend_schema(tags=["invoices"], parameters=[id_parameter()])
class InvoicePdfApi(DownloadApi):
    @extend_schema(
        operation_id="invoices_pdf",
        summary=_("Invoice PDF"),
        description=_(
            "The invoice as a PDF document, in the language of the request: seller and customer, "
            "number, dates, amount and status; once paid, the method that paid (brand and last 4 "
            "digits) and when."
        ),
        responses={
            (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description=_("The PDF.")),
            **error_responses(400, 401, 403, 404),
        },
    )
    def get(self, request, id):
        account = request_account(request)
        invoice = get_for_account(
            Invoice.objects.select_related("account", "paid_by_method"), account=account, pk=id
        )
        return pdf_response(invoice)


@extend_schema(tags=["invoices"])
class InvoiceExportApi(DownloadApi):
    @extend_schema(
        operation_id="invoices_export",
        summary=_("Export invoices as CSV"),
        description=_(
            "Every invoice of the account (or those of one status) as CSV, latest due first: UTF-8 "
            "with a byte order mark, amounts in major units with their currency code. Streamed."
        ),
        parameters=[
            OpenApiParameter("status", enum=Invoice.Status.values, description=_("Only this status."))
        ],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description=_("The CSV file.")),
            **error_responses(400, 401, 403, 404),
        },
    )
    def get(self, request):
        filters = InvoiceFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        account = request_account(request)
        status = filters.validated_data.get("status", "")
        return csv_response(
            filename=export_filename("invoices", account, status),
            header=INVOICE_HEADER,
            rows=invoice_rows(invoices_to_export(account, status=status)),
        )
