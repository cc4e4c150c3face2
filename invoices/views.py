"""Invoices: the list, one invoice with its attempt timeline and next-run preview, and Pay now."""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef
from django.shortcuts import redirect
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.generic import TemplateView

from accounts.selectors import get_for_account, scoped
from core.views import ManagerPage, MemberPage
from payments.forms import PayNowForm
from payments.models import PaymentMethod

from . import settlement
from .authentication import Stage, authentication_finish, authentication_start, waiting_attempt
from .models import Invoice, PaymentAttempt
from .refunds import customer_refunds
from .timeline import attempt_timeline


def _with_in_flight(queryset):
    return queryset.annotate(
        in_flight=Exists(
            PaymentAttempt.objects.filter(invoice=OuterRef("pk"), status__in=PaymentAttempt.UNRESOLVED)
        )
    )


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
        page = Paginator(_with_in_flight(invoices).order_by("-due_on", "-pk"), self.paginate_by).get_page(
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
            _with_in_flight(Invoice.objects.select_related("paid_by_method")),
            account=self.account,
            pk=self.kwargs["pk"],
        )

    def get_page_title(self):
        return _("Invoice %(number)s") % {"number": self.invoice.number}

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        invoice = self.invoice
        attempts = list(invoice.attempts.select_related("method", "initiated_by").order_by("sequence"))
        preview = settlement.settlement_preview(invoice=invoice) if invoice.is_collectable else []
        context.update(
            invoice=invoice,
            timeline=attempt_timeline(attempts),
            preview=preview,
            pay_form=PayNowForm(methods=_payable_methods(self.account)),
            refunds=customer_refunds(invoice),
            waiting_authentication=waiting_attempt(invoice) if invoice.is_collectable else None,
        )
        return context


def _payable_methods(account):
    return scoped(PaymentMethod.objects.active(), account=account).order_by("rank__position", "-created_at")


OUTCOME_LEVELS = {"paid": messages.SUCCESS, "pending": messages.INFO, "busy": messages.INFO}


class InvoicePayNowView(MemberPage, View):
    """Pay now runs the same settlement code as the scheduled run, at once, for this invoice."""

    http_method_names = ["post"]

    def post(self, request, pk):
        invoice = get_for_account(Invoice.objects.select_related("account"), account=self.account, pk=pk)
        form = PayNowForm(request.POST, methods=_payable_methods(self.account))
        if not form.is_valid():
            messages.error(request, _("Choose one of your payment methods."))
        else:
            result = settlement.invoice_pay_now(
                invoice=invoice, actor=request.user, method=form.cleaned_data["method"], request=request
            )
            messages.add_message(request, OUTCOME_LEVELS.get(result.outcome, messages.ERROR), result.message)
        if request.POST.get("next") == "dashboard":
            return redirect("dashboard")
        return redirect("invoice_detail", pk=invoice.pk)


AUTHENTICATION_MESSAGES = {
    Stage.PAID: (messages.SUCCESS, gettext_lazy("This invoice is paid: there is nothing left to confirm.")),
    Stage.CLOSED: (messages.INFO, gettext_lazy("This invoice is closed: nothing will be charged.")),
    Stage.FAILED: (
        messages.ERROR,
        gettext_lazy("Your bank did not confirm the payment. We will try your next payment method."),
    ),
    Stage.NOTHING: (
        messages.INFO,
        gettext_lazy("No payment of this invoice is waiting for you to confirm it."),
    ),
    Stage.UNAVAILABLE: (
        messages.WARNING,
        gettext_lazy(
            "We could not reach the payment processor. Nothing was charged; please try again shortly."
        ),
    ),
}


class InvoiceAuthenticateView(ManagerPage, TemplateView):
    """The page the authentication email links to: the customer confirms a charge with their bank.

    GET shows it (or says why there is nothing to confirm, cancelling a charge the invoice no longer
    needs); the page's script confirms in the browser, then posts here, and the answer is read again
    from the gateway (authentication_finish), never taken from the browser."""

    template_name = "invoices/invoice_authenticate.html"
    nav = "invoices"

    @cached_property
    def invoice(self):
        return get_for_account(
            Invoice.objects.select_related("account"), account=self.account, pk=self.kwargs["pk"]
        )

    def get_page_title(self):
        return _("Confirm the payment of invoice %(number)s") % {"number": self.invoice.number}

    def get(self, request, *args, **kwargs):
        self.authentication = authentication_start(self.invoice)
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        auth = self.authentication
        context.update(
            invoice=self.invoice,
            authentication=auth,
            stage_message=AUTHENTICATION_MESSAGES.get(auth.stage, (None, ""))[1],
            stripe_js_url=settings.STRIPE_JS_URL,
        )
        return context

    def post(self, request, pk):
        try:
            attempt_id = int(request.POST.get("attempt", ""))
        except ValueError:
            attempt_id = 0
        auth = authentication_finish(self.invoice, attempt_id=attempt_id)
        if auth.stage == Stage.AUTHENTICATE:
            messages.warning(request, _("Your bank has not confirmed the payment yet. Please try again."))
            return redirect("invoice_authenticate", pk=self.invoice.pk)
        level, text = AUTHENTICATION_MESSAGES[auth.stage]
        messages.add_message(request, level, text)
        return redirect("invoice_detail", pk=self.invoice.pk)
