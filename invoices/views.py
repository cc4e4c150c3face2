"""Invoices: the list, one invoice with its attempt timeline and next-run preview, and Pay now."""

from django import forms
from django.conf import settings
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
from core.views import ManagerPage, MemberPage
from payments.gateways.stripe.csp import content_security_policy
from payments.stripe_views import stripe_collects

from . import settlement
from .authentication import Stage, authentication_finish, authentication_start, waiting_attempt
from .forms import PayNowForm
from .models import Invoice
from .refunds import customer_refunds
from .settlement.eligibility import awaiting_words, invoice_outlook, pay_now_choices
from .timeline import Request, attempt_timeline

# The audit events that begin a pass over an invoice made on request (each its own timeline group).
ON_REQUEST = (AuditEvent.Action.PAY_NOW, AuditEvent.Action.INVOICE_RETRIED)


# What a row of the list shows, and what its method's label is made of.
LIST_FIELDS = (
    "id",
    "number",
    "description",
    "currency",
    "amount_minor",
    "issued_on",
    "due_on",
    "status",
    "paid_by_backup",
    *(f"paid_by_method__{name}" for name in ("kind", "brand", "last4", "bank_name")),
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
        invoices = scoped(Invoice.objects.select_related("paid_by_method"), account=self.account).only(
            *LIST_FIELDS
        )
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
            status_choices=form.fields["status"].choices,
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
            refunds=customer_refunds(invoice),
            waiting_authentication=waiting_attempt(invoice) if invoice.is_collectable else None,
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
    Stage.BUSY: (
        messages.INFO,
        gettext_lazy("A payment of this invoice is being processed right now. Please try again in a minute."),
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

    def dispatch(self, request, *args, **kwargs):
        response = super().dispatch(request, *args, **kwargs)
        if stripe_collects():
            # The page runs Stripe.js: only it (and the add-method pages) may reach Stripe's origins.
            response._csp_config = content_security_policy(settings.SECURE_CSP)
        return response

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
