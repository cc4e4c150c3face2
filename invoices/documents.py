"""Invoice PDFs, built on request: templates/invoices/pdf/invoice.html typeset by WeasyPrint in the
active language and time zone.

The document embeds the vendored IPAex Gothic (invoices/fonts/, with its licence), so Japanese and
the Latin text beside it render the same on every machine, whatever fonts it has. Nothing is
fetched from the network: the only files a document may load are those in invoices/fonts/; every
other address (http, https, data, another file) is refused.
"""

import functools
import mimetypes
import re
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone, translation
from weasyprint import HTML
from weasyprint.urls import FatalURLFetchingError, URLFetcher, URLFetcherResponse

from core.money import format_money
from notifications.rendering import Attachment

from .models import Invoice

ASSETS = Path(__file__).resolve().parent / "fonts"
TEMPLATE = "invoices/pdf/invoice.html"


class RefusedResource(ValueError):
    """A document asked for something other than its own files."""


class LocalAssetFetcher(URLFetcher):
    """Serves the files in ``ASSETS`` and refuses every other address."""

    def fetch(self, url, headers=None):
        parts = urlsplit(url)
        if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
            raise RefusedResource(f"Invoice documents load nothing from outside: {url}")
        path = Path(url2pathname(parts.path)).resolve()
        if not path.is_relative_to(ASSETS) or not path.is_file():
            raise RefusedResource(f"Invoice documents load only their own files: {url}")
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return URLFetcherResponse(url, body=_asset(path), headers={"Content-Type": content_type})


@functools.lru_cache(maxsize=8)
def _asset(path: Path) -> bytes:
    return path.read_bytes()


def seller() -> dict:
    """Who issues the invoices (BILLING_SELLER_* settings)."""
    return {
        "name": settings.BILLING_SELLER_NAME,
        "address_lines": [line for line in settings.BILLING_SELLER_ADDRESS.splitlines() if line.strip()],
        "email": settings.BILLING_SELLER_EMAIL,
        "tax_id": settings.BILLING_SELLER_TAX_ID,
    }


def invoice_document_context(invoice: Invoice) -> dict:
    """What the PDF shows, in the active language and time zone. Of the method that paid, only
    what the console shows too: its brand (or bank) and last 4 digits."""
    paid = invoice.status == Invoice.Status.PAID
    method = invoice.paid_by_method if paid else None
    return {
        "language": translation.get_language() or settings.LANGUAGE_CODE,
        "invoice": invoice,
        "seller": seller(),
        "customer": {"name": invoice.account.name, "email": invoice.account.billing_email},
        "amount": format_money(invoice.amount_minor, invoice.currency),
        "status": invoice.get_status_display(),
        "paid": paid,
        "paid_with": method.label if method else "",
        "paid_at": timezone.localtime(invoice.paid_at) if paid and invoice.paid_at else None,
    }


def invoice_pdf(invoice: Invoice) -> bytes:
    """The invoice as a PDF, in the active language. ``invoice`` needs its account and the method
    that paid it (``select_related("account", "paid_by_method")`` saves the queries)."""
    html = render_to_string(TEMPLATE, invoice_document_context(invoice))
    document = HTML(
        string=html, base_url=ASSETS.as_uri() + "/", url_fetcher=LocalAssetFetcher(fail_on_errors=True)
    )
    try:
        return document.write_pdf()
    except FatalURLFetchingError as exc:
        # WeasyPrint's stop is a BaseException: make it an error that callers (a view, the outbox
        # recording a failed email) handle like any other.
        raise RefusedResource(str(exc)) from exc


def invoice_pdf_filename(invoice: Invoice) -> str:
    """``invoice-INV-2026-0001.pdf``: the number, with anything a file name should not hold replaced."""
    return f"invoice-{re.sub(r'[^A-Za-z0-9._-]+', '_', invoice.number).strip('._') or invoice.pk}.pdf"


def receipt_attachment(context: dict) -> Attachment | None:
    """A receipt email's PDF (registered for SentEmail.Kind.RECEIPT in InvoicesConfig.ready): the
    invoice as it is when the email is sent, in the recipient group's language and time zone."""
    invoice = (
        Invoice.objects.select_related("account", "paid_by_method")
        .filter(pk=context.get("invoice_id"))
        .first()
    )
    if invoice is None:
        return None
    return Attachment(
        filename=invoice_pdf_filename(invoice), content=invoice_pdf(invoice), mimetype="application/pdf"
    )
