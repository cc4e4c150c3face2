"""Payment methods and the charge order: thin views over payments.services."""

import json
import logging

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.generic import FormView, TemplateView

from accounts.selectors import get_for_account, scoped
from core.views import ManagerPage, MemberPage

from . import services
from .forms import ADD_FORMS, SENSITIVE_FIELDS, ExpiryForm
from .gateways.base import InvalidPaymentDetails
from .models import PaymentMethod
from .ranks import position_label
from .ratelimit import add_method_blocked, add_method_failure_record
from .selectors import charge_order_entries
from .stripe_views import StripeAddPaymentMethodView, stripe_collects

logger = logging.getLogger(__name__)


def _order_message(order_ids: list[int], method: PaymentMethod) -> str:
    if method.pk not in order_ids:
        return _("%(label)s is no longer in the charge order; it stays on file.") % {"label": method.label}
    rank = position_label(order_ids.index(method.pk) + 1)
    return _("%(label)s is now %(rank)s.") % {"label": method.label, "rank": rank}


class PaymentMethodListView(MemberPage, TemplateView):
    template_name = "payments/method_list.html"
    page_title = gettext_lazy("Payment methods")
    nav = "methods"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        order = charge_order_entries(account=self.account)
        on_file = list(
            scoped(PaymentMethod.objects.active(), account=self.account)
            .filter(rank__isnull=True)
            .order_by("-created_at", "-pk")
        )
        context.update(
            order=order,
            on_file=on_file,
            order_full=len(order) >= 1 + settings.BILLING_MAX_BACKUPS,
            today=timezone.localdate(),
            add_blocked=add_method_blocked(account_id=self.account.pk),
        )
        return context


ACTIONS = {
    "move_up": lambda **kw: services.charge_order_move(offset=-1, **kw),
    "move_down": lambda **kw: services.charge_order_move(offset=1, **kw),
    "make_primary": services.charge_order_make_primary,
    "add_to_backups": services.charge_order_add_backup,
    "remove_from_backups": services.charge_order_remove,
}


class ChargeOrderActionView(MemberPage, View):
    """The no-JavaScript charge order: Move up, Move down, Make primary, Add to / Remove from backups."""

    http_method_names = ["post"]

    def post(self, request, pk):
        method = get_for_account(PaymentMethod.objects.active(), account=self.account, pk=pk)
        action = ACTIONS.get(request.POST.get("action", ""))
        if action is None:
            messages.error(request, _("That action is not available."))
        else:
            try:
                order = action(account=self.account, actor=request.user, method_id=method.pk, request=request)
            except ValidationError as exc:
                for message in exc.messages:
                    messages.error(request, message)
            else:
                messages.success(request, _order_message(order, method))
        if request.POST.get("next") == "dashboard":
            return redirect("dashboard")
        return redirect(f"{reverse('payment_methods')}#method-{method.pk}")


class ChargeOrderSetView(MemberPage, View):
    """JSON endpoint for drag-and-drop: {"order": [method ids, primary first]} → charge_order_set."""

    http_method_names = ["post"]

    def post(self, request):
        try:
            payload = json.loads(request.body or b"{}")
            method_ids = [int(m) for m in payload["order"]]
        except (ValueError, TypeError, KeyError):
            return JsonResponse({"errors": [_("Send the new order as a list of method ids.")]}, status=400)
        try:
            order = services.charge_order_set(
                account=self.account, actor=request.user, method_ids=method_ids, request=request
            )
        except ValidationError as exc:
            return JsonResponse({"errors": exc.messages}, status=400)
        labels = dict(
            (m.pk, m.label) for m in scoped(PaymentMethod.objects, account=self.account).filter(pk__in=order)
        )
        entries = [
            {
                "id": method_id,
                "label": labels.get(method_id, ""),
                "rank": position_label(position),
            }
            for position, method_id in enumerate(order, start=1)
        ]
        summary = "; ".join(f"{e['rank']}: {e['label']}" for e in entries)
        return JsonResponse(
            {"order": entries, "message": _("Charge order saved. %(order)s.") % {"order": summary}}
        )


@method_decorator(sensitive_post_parameters(*SENSITIVE_FIELDS), name="dispatch")
class AddPaymentMethodView(ManagerPage, FormView):
    template_name = "payments/method_add.html"
    nav = "methods"

    def dispatch(self, request, *args, **kwargs):
        if stripe_collects():
            return StripeAddPaymentMethodView.as_view()(request, *args, **kwargs)
        if kwargs["kind"] not in ADD_FORMS:
            raise Http404
        self.kind = kwargs["kind"]
        return super().dispatch(request, *args, **kwargs)

    def get(self, request, *args, **kwargs):
        if add_method_blocked(account_id=self.account.pk):
            return self.blocked()
        return super().get(request, *args, **kwargs)

    def post(self, request, *args, **kwargs):
        if add_method_blocked(account_id=self.account.pk):
            return self.blocked()
        return super().post(request, *args, **kwargs)

    def blocked(self):
        return render(
            self.request,
            "payments/add_blocked.html",
            {"page_title": _("Try again later"), "nav": self.nav},
            status=429,
        )

    def get_page_title(self):
        return {
            "card": _("Add a card"),
            "sepa": _("Add a SEPA bank account"),
            "bank": _("Add a US bank account"),
        }[self.kind]

    def get_form_class(self):
        return ADD_FORMS[self.kind]

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["kind"] = self.kind
        context["sandbox"] = settings.PAYMENT_GATEWAY == "sandbox"
        # What the page needs to collect the method; with the sandbox, nothing: the form posts here.
        context["setup"] = services.payment_method_setup_start(
            account=self.account, kind=self.get_form_class().kind
        )
        return context

    def form_invalid(self, form):
        # Card testing: every rejected set of details counts toward the account's hourly limit.
        add_method_failure_record(account_id=self.account.pk)
        if add_method_blocked(account_id=self.account.pk):
            return self.blocked()
        return super().form_invalid(form)

    @method_decorator(sensitive_variables("data"))
    def form_valid(self, form):
        data = form.cleaned_data
        common = {
            "account": self.account,
            "actor": self.request.user,
            "add_to_order": data["add_to_order"],
            "request": self.request,
        }
        try:
            if self.kind == "card":
                month, year = data["expiry"]
                method = services.payment_method_add_card(
                    number=data["number"], exp_month=month, exp_year=year, cvc=data["cvc"], **common
                )
            elif self.kind == "sepa":
                method = services.payment_method_add_sepa_debit(
                    iban=data["iban"], account_holder=data["account_holder"], **common
                )
            else:
                method = services.payment_method_add_ach_debit(
                    routing_number=data["routing_number"],
                    account_number=data["account_number"],
                    account_holder=data["account_holder"],
                    **common,
                )
        except InvalidPaymentDetails as exc:
            form.add_error(form.field_for_gateway_error(exc.field), exc.message)
            return self.form_invalid(form)
        order = services.charge_order_ids(account=self.account)
        if method.pk in order:
            messages.success(self.request, _order_message(order, method))
        else:
            messages.success(
                self.request,
                _("%(label)s was added. It is on file but not in the charge order.")
                % {"label": method.label},
            )
        return redirect(f"{reverse('payment_methods')}#method-{method.pk}")


class RemovePaymentMethodView(ManagerPage, TemplateView):
    """Removal asks first: GET shows what will change, POST removes."""

    template_name = "payments/method_remove.html"
    nav = "methods"

    @cached_property
    def method(self):
        return get_for_account(PaymentMethod.objects.active(), account=self.account, pk=self.kwargs["pk"])

    def get(self, request, *args, **kwargs):
        self.method  # noqa: B018 -- a 404 before anything renders
        return super().get(request, *args, **kwargs)

    def get_page_title(self):
        return _("Remove %(label)s?") % {"label": self.method.label}

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        order = charge_order_entries(account=self.account)
        position = next((e.position for e in order if e.method_id == self.method.pk), None)
        context.update(method=self.method, position=position, order=order)
        return context

    def post(self, request, pk):
        method = self.method
        services.payment_method_remove(method=method, actor=request.user, request=request)
        messages.success(request, _("%(label)s was removed.") % {"label": method.label})
        return redirect("payment_methods")


class UpdateExpiryView(ManagerPage, FormView):
    template_name = "payments/method_expiry.html"
    form_class = ExpiryForm
    nav = "methods"

    @cached_property
    def method(self):
        return get_for_account(
            PaymentMethod.objects.active().filter(kind=PaymentMethod.Kind.CARD),
            account=self.account,
            pk=self.kwargs["pk"],
        )

    def get_page_title(self):
        return _("Update the expiry date of %(label)s") % {"label": self.method.label}

    def get_initial(self):
        return {"exp_month": self.method.exp_month, "exp_year": self.method.exp_year}

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["method"] = self.method
        return context

    def form_valid(self, form):
        try:
            services.payment_method_update_expiry(
                method=self.method,
                actor=self.request.user,
                exp_month=form.cleaned_data["exp_month"],
                exp_year=form.cleaned_data["exp_year"],
                request=self.request,
            )
        except ValidationError as exc:
            form.add_error(None, exc)
            return self.form_invalid(form)
        messages.success(
            self.request, _("The expiry date of %(label)s was updated.") % {"label": self.method.label}
        )
        return redirect("payment_methods")
