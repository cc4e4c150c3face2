"""Support's refund page for one paid invoice, and what an invoice's admin shows of its refunds and
disputes.

The page asks for an amount and a reason, then shows a confirmation of exactly what will be given
back before anything is sent. It is a view of its own, not a change form: Django wraps a change
form's POST in a transaction, and the gateway must never be called inside one.
"""

from decimal import Decimal, InvalidOperation

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.admin import admin_link
from core.money import format_money, to_major, to_minor
from invoices.models import Invoice, Refund, WebhookEvent
from invoices.refunds import invoice_refund, refundable_minor

REFUND_PERMISSION = "invoices.add_refund"
DISPUTE_EVENT = "charge.dispute.created"


class RefundForm(forms.Form):
    amount = forms.DecimalField(
        label=gettext_lazy("Amount to refund"), min_value=Decimal("0"), decimal_places=3
    )
    reason = forms.CharField(label=gettext_lazy("Reason (kept in the audit log)"), max_length=300)

    def __init__(self, *args, invoice: Invoice, left: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.invoice, self.left = invoice, left
        self.fields["amount"].help_text = _("In %(currency)s; at most %(left)s.") % {
            "currency": invoice.currency,
            "left": format_money(left, invoice.currency),
        }

    def clean_amount(self):
        try:
            minor = to_minor(self.cleaned_data["amount"], self.invoice.currency)
        except (ValueError, InvalidOperation):
            raise ValidationError(_("Enter the amount in the currency's own units.")) from None
        if not 0 < minor <= self.left:
            raise ValidationError(
                _("Enter an amount above zero and at most %(left)s.")
                % {"left": format_money(self.left, self.invoice.currency)}
            )
        return minor


def refund_view(model_admin, request, object_id):
    """GET: the form. POST: the confirmation, then (``confirm=yes``) the refund itself."""
    if not request.user.has_perm(REFUND_PERMISSION):
        raise PermissionDenied
    invoice = get_object_or_404(Invoice.objects.select_related("account", "paid_by_method"), pk=object_id)
    change_url = reverse("admin:invoices_invoice_change", args=[invoice.pk])
    left = refundable_minor(invoice)
    if left == 0:
        model_admin.message_user(
            request,
            _("Invoice %(number)s has nothing left to refund.") % {"number": invoice.number},
            messages.WARNING,
        )
        return HttpResponseRedirect(change_url)
    initial = {"amount": to_major(left, invoice.currency)}
    form = RefundForm(request.POST or None, initial=initial, invoice=invoice, left=left)
    confirming = False
    if request.method == "POST" and form.is_valid():
        amount, reason = form.cleaned_data["amount"], form.cleaned_data["reason"]
        if request.POST.get("confirm") != "yes":
            confirming = True
        else:
            try:
                refund = invoice_refund(
                    invoice=invoice, amount_minor=amount, actor=request.user, reason=reason, request=request
                )
            except ValidationError as exc:
                model_admin.message_user(request, " ".join(exc.messages), messages.ERROR)
                return HttpResponseRedirect(change_url)
            model_admin.message_user(request, refund_message(refund), REFUND_LEVELS[refund.status])
            return HttpResponseRedirect(change_url)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": _("Refund invoice %(number)s") % {"number": invoice.number},
        "subtitle": None,
        "opts": model_admin.opts,
        "invoice": invoice,
        "form": form,
        "confirming": confirming,
        "amount": format_money(form.cleaned_data["amount"], invoice.currency) if confirming else "",
        "paid": format_money(invoice.amount_minor, invoice.currency),
        "left": format_money(left, invoice.currency),
        "change_url": change_url,
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, "admin/invoices/invoice/refund.html", context)


REFUND_LEVELS = {
    Refund.Status.SUCCEEDED: messages.SUCCESS,
    Refund.Status.FAILED: messages.ERROR,
    Refund.Status.UNKNOWN: messages.WARNING,
    Refund.Status.STARTED: messages.WARNING,
}


def refund_message(refund: Refund) -> str:
    words = {"amount": format_money(refund.amount_minor, refund.currency), "number": refund.invoice.number}
    if refund.status == Refund.Status.SUCCEEDED:
        return _("%(amount)s of invoice %(number)s was refunded.") % words
    if refund.status == Refund.Status.FAILED:
        return _("The gateway refused the refund of %(amount)s of invoice %(number)s: %(message)s") % {
            **words,
            "message": refund.message,
        }
    return (
        _(
            "The gateway did not answer the refund of %(amount)s of invoice %(number)s. It is recorded with "
            "its own key: resolve it from the refunds list, which never refunds twice."
        )
        % words
    )


def refunds_summary(invoice: Invoice) -> str:
    refunds = list(invoice.refunds.order_by("pk"))
    lines = format_html_join(
        "",
        "<li>{} · {} · {} · {}</li>",
        (
            (
                admin_link(r, format_money(r.amount_minor, r.currency)),
                r.get_status_display(),
                r.get_source_display(),
                r.reason or "-",
            )
            for r in refunds
        ),
    )
    link = ""
    if refundable_minor(invoice) > 0:
        link = format_html(
            '<a class="button" href="{}">{}</a>',
            reverse("admin:invoices_invoice_refund", args=[invoice.pk]),
            _("Refund…"),
        )
    if not refunds:
        return format_html("{} {}", _("None."), link)
    return format_html("<ul>{}</ul>{}", lines, link)


def disputes_summary(events) -> str:
    """The customer's disputes of a charge, as Stripe's ``charge.dispute.created`` events told us."""
    rows = []
    for event in events:
        dispute = (event.payload.get("data") or {}).get("object") or {}
        amount = dispute.get("amount")
        currency = str(dispute.get("currency") or "").upper()
        rows.append(
            (
                admin_link(event, dispute.get("id") or event.event_id),
                format_money(int(amount), currency) if isinstance(amount, int) and currency else "-",
                dispute.get("reason") or "-",
                dispute.get("status") or "-",
            )
        )
    if not rows:
        return _("None.")
    return format_html("<ul>{}</ul>", format_html_join("", "<li>{} · {} · {} · {}</li>", rows))


def disputes_of(**attempt_filter):
    return WebhookEvent.objects.filter(type=DISPUTE_EVENT, **attempt_filter).order_by("received_at")
