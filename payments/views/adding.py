"""Adding a payment method: the form (the sandbox's numbers) or the processor's own collection in
the browser, then a confirmation when it replaces or duplicates one on file."""

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.generic import FormView, TemplateView

from accounts.selectors import get_for_account
from core.views import ManagerPage

from .. import services
from ..forms import ADD_FORMS, SENSITIVE_FIELDS
from ..gateways.base import InvalidPaymentDetails, TokenizedMethod
from ..models import PaymentMethod
from ..ranks import position_label
from ..ratelimit import (
    add_method_blocked,
    add_method_failure_record,
)
from ..stripe_views import StripeAddPaymentMethodView, stripe_collects
from .order import add_wait_text, order_message

PENDING_METHOD = "payment_method_pending"


def _replacement_message(method: PaymentMethod, replaced: PaymentMethod, order: list[int]) -> str:
    return _(
        "%(new)s took the place of %(old)s as %(rank)s. %(old)s stays on file, out of the charge order."
    ) % {
        "new": method.label,
        "old": replaced.label,
        "rank": position_label(order.index(method.pk) + 1),
    }


def _keep(request, *, account, kind: str, reference: str, add_to_order: bool, replaces):
    """Keep a tokenised method (raises DuplicatePaymentMethod, InvalidPaymentDetails, ValidationError)
    and say where it went."""
    in_order_before = replaces is not None and replaces.pk in services.charge_order_ids(account=account)
    method = services.payment_method_setup_finish(
        account=account,
        actor=request.user,
        kind=kind,
        reference=reference,
        add_to_order=add_to_order,
        replaces=replaces,
        request=request,
    )
    order = services.charge_order_ids(account=account)
    if in_order_before and method.pk in order:
        messages.success(request, _replacement_message(method, replaces, order))
    elif method.pk in order:
        messages.success(request, order_message(order, method))
    else:
        messages.success(
            request,
            _("%(label)s was added. It is on file but not in the charge order.") % {"label": method.label},
        )
    return redirect(f"{reverse('payment_methods')}#method-{method.pk}")


class AddMethodBlockedMixin:
    def blocked(self):
        return render(
            self.request,
            "payments/add_blocked.html",
            {"page_title": _("Try again later"), "nav": self.nav, "wait": add_wait_text(self.account)},
            status=429,
        )


@method_decorator(sensitive_post_parameters(*SENSITIVE_FIELDS), name="dispatch")
class AddPaymentMethodView(AddMethodBlockedMixin, ManagerPage, FormView):
    """Add a card or bank account; with ``?replace=<id>``, one that takes that method's place.

    A typing mistake is shown next to its field, always. Details the gateway refuses count toward
    the card-testing limit (payments.ratelimit); at the limit, and until the block ends, the page
    says how long the wait is. A method the account already keeps is refused; a bank account that
    cannot pay the account's currency is kept only once the member confirms it.
    """

    template_name = "payments/method_add.html"
    nav = "methods"

    def dispatch(self, request, *args, **kwargs):
        if stripe_collects():
            return StripeAddPaymentMethodView.as_view()(request, *args, **kwargs)
        if kwargs["kind"] not in ADD_FORMS:
            raise Http404
        self.kind = kwargs["kind"]
        return super().dispatch(request, *args, **kwargs)

    @cached_property
    def replacing(self) -> PaymentMethod | None:
        raw = self.request.POST.get("replace") or self.request.GET.get("replace")
        if not raw:
            return None
        if not raw.isdigit():
            raise Http404
        return get_for_account(
            PaymentMethod.objects.active().select_related("rank"), account=self.account, pk=int(raw)
        )

    @cached_property
    def replacing_position(self) -> int | None:
        entry = getattr(self.replacing, "rank", None) if self.replacing else None
        return entry.position if entry else None

    def get(self, request, *args, **kwargs):
        self.replacing  # noqa: B018 -- a 404 before anything renders
        if add_method_blocked(account_id=self.account.pk):
            return self.blocked()
        return super().get(request, *args, **kwargs)

    def post(self, request, *args, **kwargs):
        self.replacing  # noqa: B018
        form = self.get_form()
        if not form.is_valid():
            # A typing mistake never reaches the gateway and never counts toward the limit.
            return self.form_invalid(form)
        if add_method_blocked(account_id=self.account.pk):
            return self.blocked()
        return self.form_valid(form)

    def get_page_title(self):
        if self.replacing is not None:
            return _("Replace %(label)s") % {"label": self.replacing.label}
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
        context["replacing"] = self.replacing
        context["replacing_position"] = self.replacing_position
        # What the page needs to collect the method; with the sandbox, nothing: the form posts here.
        context["setup"] = services.payment_method_setup_start(
            account=self.account, kind=self.get_form_class().kind
        )
        return context

    @method_decorator(sensitive_variables("data"))
    def tokenize(self, data) -> TokenizedMethod:
        if self.kind == "card":
            month, year = data["expiry"]
            return services.payment_method_tokenize_card(
                number=data["number"], exp_month=month, exp_year=year, cvc=data["cvc"]
            )
        if self.kind == "sepa":
            return services.payment_method_tokenize_sepa_debit(
                iban=data["iban"], account_holder=data["account_holder"]
            )
        return services.payment_method_tokenize_ach_debit(
            routing_number=data["routing_number"],
            account_number=data["account_number"],
            account_holder=data["account_holder"],
        )

    def refused(self, form, exc: InvalidPaymentDetails):
        """The gateway refused the details: what card testing looks like, so it counts."""
        add_method_failure_record(account_id=self.account.pk)
        if add_method_blocked(account_id=self.account.pk):
            return self.blocked()
        form.add_error(form.field_for_gateway_error(exc.field), exc.message)
        return self.form_invalid(form)

    @method_decorator(sensitive_variables("data"))
    def form_valid(self, form):
        data = form.cleaned_data
        try:
            collected = self.tokenize(data)
        except InvalidPaymentDetails as exc:
            return self.refused(form, exc)
        try:
            services.payment_method_refuse_duplicate(account=self.account, tokenized=collected)
        except services.DuplicatePaymentMethod as exc:
            form.add_error(None, exc.messages[0])
            return self.form_invalid(form)
        # Replacing a method in the charge order puts the new one in its place, whatever the box says.
        add_to_order = data["add_to_order"] or self.replacing_position is not None
        if not PaymentMethod.kind_can_pay_currency(collected.kind, self.account.currency):
            self.request.session[PENDING_METHOD] = {
                "account": self.account.pk,
                "page": self.kind,
                "kind": collected.kind,
                "token": collected.token,
                "brand": collected.brand,
                "last4": collected.last4,
                "bank_name": collected.bank_name,
                "add_to_order": add_to_order,
                "replace": self.replacing.pk if self.replacing else None,
            }
            return redirect("payment_method_add_confirm", kind=self.kind)
        try:
            return _keep(
                self.request,
                account=self.account,
                kind=collected.kind,
                reference=collected.token,
                add_to_order=add_to_order,
                replaces=self.replacing,
            )
        except InvalidPaymentDetails as exc:
            return self.refused(form, exc)
        except ValidationError as exc:  # a duplicate added meanwhile, or the replaced method removed
            form.add_error(None, exc.messages[0])
            return self.form_invalid(form)


class ConfirmAddPaymentMethodView(ManagerPage, TemplateView):
    """ "It cannot pay USD invoices": a bank account in another currency is kept only if confirmed."""

    template_name = "payments/method_add_confirm.html"
    nav = "methods"

    @cached_property
    def pending(self) -> dict | None:
        pending = self.request.session.get(PENDING_METHOD)
        if not pending or pending["account"] != self.account.pk or pending["page"] != self.kwargs["kind"]:
            return None
        return pending

    @cached_property
    def method(self) -> PaymentMethod:
        """The method as it would be kept (unsaved), for its label and face."""
        pending = self.pending
        return PaymentMethod(
            kind=pending["kind"],
            brand=pending["brand"],
            last4=pending["last4"],
            bank_name=pending["bank_name"],
        )

    def get(self, request, *args, **kwargs):
        if self.pending is None:
            return redirect("payment_method_add", kind=kwargs["kind"])
        return super().get(request, *args, **kwargs)

    def get_page_title(self):
        return _("Add a method that cannot pay %(currency)s invoices?") % {"currency": self.account.currency}

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        kind = self.pending["kind"]
        context.update(
            method=self.method,
            warning=_(
                "%(label)s cannot pay %(currency)s invoices: %(kind)s pays only %(pays)s invoices, and "
                "this account is billed in %(currency)s. Automatic payments will pass over it."
            )
            % {
                "label": self.method.label,
                "currency": self.account.currency,
                "kind": PaymentMethod.Kind(kind).label,
                "pays": ", ".join(sorted(PaymentMethod.KIND_CURRENCIES[kind])),
            },
        )
        return context

    def post(self, request, kind):
        pending = self.pending
        if pending is None:
            return redirect("payment_method_add", kind=kind)
        del request.session[PENDING_METHOD]
        if request.POST.get("action") != "add":
            messages.info(request, _("%(label)s was not added.") % {"label": self.method.label})
            return redirect("payment_methods")
        replaces = None
        if pending["replace"]:
            replaces = (
                PaymentMethod.objects.active().filter(account=self.account, pk=pending["replace"]).first()
            )
        try:
            return _keep(
                request,
                account=self.account,
                kind=pending["kind"],
                reference=pending["token"],
                add_to_order=pending["add_to_order"],
                replaces=replaces,
            )
        except (InvalidPaymentDetails, ValidationError) as exc:
            messages.error(
                request, exc.message if isinstance(exc, InvalidPaymentDetails) else exc.messages[0]
            )
            return redirect("payment_method_add", kind=kind)
