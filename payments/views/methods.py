"""A method on file: removed (asking first) or given its card's new expiry."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from django.views.generic import FormView, TemplateView

from accounts.selectors import get_for_account
from core.views import ManagerPage

from .. import services
from ..forms import ExpiryForm
from ..models import PaymentMethod
from ..selectors import charge_order_entries


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
