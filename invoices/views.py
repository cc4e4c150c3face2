"""Invoices: the list, one invoice with its attempt timeline and next-run preview, and Pay now."""

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.generic import TemplateView

from accounts.models import AuditEvent
from accounts.selectors import get_for_account, scoped
from core.views import MemberPage

from . import settlement
from .forms import PayNowForm
from .models import Invoice
from .settlement.eligibility import awaiting_words, invoice_outlook, pay_now_choices
from .timeline import Request, attempt_timeline

# The audit events that begin a pass over an invoice made on request (each its own timeline group).
ON_REQUEST = (AuditEvent.Action.PAY_NOW, AuditEvent.Action.INVOICE_RETRIED)


class InvoiceFilterForm(forms.Form):
    status = forms.ChoiceField(
        label=gettext_lazy("Status"),
        required=False,
        choices=[("", gettext_lazy("All statuses")), *Invoice.Status.choices],
    )


class InvoiceListView(MemberPage, TemplateView):
    template_name = "invoices/invoice_list.html"
    page_title = gettext_lazy("Invoices")
    nav = "invoices"
    paginate_by = 25

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        form = InvoiceFilterForm(self.request.GET or None)
        invoices = scoped(Invoice.objects.select_related("paid_by_method"), account=self.account)
        status = form.cleaned_data.get("status") if form.is_valid() else ""
        if status:
            invoices = invoices.filter(status=status)
        page = Paginator(invoices.with_in_flight().order_by("-due_on", "-pk"), self.paginate_by).get_page(
            self.request.GET.get("page")
        )
        context.update(
            filter_form=form,
            status=status,
            status_tabs=[("", _("All"))] + [(v, str(label)) for v, label in Invoice.Status.choices],
            page_obj=page,
            invoices=page.object_list,
        )
        return context


class InvoiceDetailView(MemberPage, TemplateView):
    template_name = "invoices/invoice_detail.html"
    nav = "invoices"

    @cached_property
    def invoice(self):
        return get_for_account(
            Invoice.objects.select_related("paid_by_method").with_in_flight(),
            account=self.account,
            pk=self.kwargs["pk"],
        )

    def get_page_title(self):
        return _("Invoice %(number)s") % {"number": self.invoice.number}

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        invoice = self.invoice
        now = timezone.now()
        attempts = list(invoice.attempts.select_related("method", "initiated_by").order_by("sequence"))
        outlook = invoice_outlook(invoice, as_of=now) if invoice.is_collectable else None
        requests = scoped(AuditEvent.objects, account=self.account).filter(
            object_type="invoice", object_id=str(invoice.pk), action__in=ON_REQUEST
        )
        context.update(
            invoice=invoice,
            now=now,
            timeline=attempt_timeline(
                attempts,
                requests=[
                    Request(at, (after or {}).get("method"))
                    for at, after in requests.values_list("created_at", "after")
                ],
                upcoming=outlook.charges if outlook else None,
                collectable=invoice.is_collectable,
            ),
            outlook=outlook,
            preview=outlook.preview if outlook else [],
        )
        if outlook is not None and outlook.awaiting is not None:
            context["awaiting"] = awaiting_words(outlook.awaiting)
        elif outlook is not None and self.membership.can_manage:
            context["pay_form"] = PayNowForm(choices=pay_now_choices(invoice, as_of=now))
        return context


OUTCOME_LEVELS = {
    "paid": messages.SUCCESS,
    "pending": messages.INFO,
    "busy": messages.INFO,
    "not_charged": messages.WARNING,
}


class InvoicePayNowView(MemberPage, View):
    """Pay now runs the same settlement code as the scheduled run, at once, for this invoice."""

    http_method_names = ["post"]

    def post(self, request, pk):
        invoice = get_for_account(Invoice.objects.select_related("account"), account=self.account, pk=pk)
        choices = pay_now_choices(invoice, as_of=timezone.now()) if invoice.is_collectable else None
        form = PayNowForm(request.POST, choices=choices) if choices is not None else None
        if choices is not None and choices.awaiting is not None:
            messages.info(
                request,
                _("Pay now is not available yet. %(why)s") % {"why": awaiting_words(choices.awaiting)},
            )
        elif form is not None and not form.is_valid():
            messages.error(
                request, " ".join(form.errors.get("method", [_("Choose one of your payment methods.")]))
            )
        else:
            result = settlement.invoice_pay_now(
                invoice=invoice,
                actor=request.user,
                method=form.cleaned_data["method"] if form is not None else None,
                request=request,
            )
            messages.add_message(request, OUTCOME_LEVELS.get(result.outcome, messages.ERROR), result.message)
        if request.POST.get("next") == "dashboard":
            return redirect("dashboard")
        return redirect("invoice_detail", pk=invoice.pk)
