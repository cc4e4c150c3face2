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
from django.utils.translation import gettext_lazy, ngettext
from django.views import View
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.generic import FormView, TemplateView

from accounts.selectors import get_for_account, scoped
from core.views import ManagerPage, MemberPage

from . import services
from .forms import ADD_FORMS, SENSITIVE_FIELDS, ExpiryForm
from .gateways.base import InvalidPaymentDetails, TokenizedMethod
from .models import PaymentMethod
from .ranks import position_label
from .ratelimit import (
    add_method_blocked,
    add_method_blocked_until,
    add_method_failure_record,
    add_method_wait_minutes,
)
from .selectors import charge_order_entries
from .stripe_views import StripeAddPaymentMethodView, stripe_collects

logger = logging.getLogger(__name__)


def _order_message(order_ids: list[int], method: PaymentMethod) -> str:
    if method.pk not in order_ids:
        return _("%(label)s is no longer in the charge order; it stays on file.") % {"label": method.label}
    rank = position_label(order_ids.index(method.pk) + 1)
    return _("%(label)s is now %(rank)s.") % {"label": method.label, "rank": rank}


def add_wait_text(account) -> str:
    """ "You can add a payment method again in 42 minutes", or "" if adding is open."""
    until = add_method_blocked_until(account_id=account.pk)
    if until is None:
        return ""
    minutes = add_method_wait_minutes(until)
    return ngettext(
        "You can add a payment method again in %(minutes)s minute.",
        "You can add a payment method again in %(minutes)s minutes.",
        minutes,
    ) % {"minutes": minutes}


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
            add_blocked_wait=add_wait_text(self.account),
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
        action_name = request.POST.get("action", "")
        action = ACTIONS.get(action_name)
        if action_name == "remove_from_backups" and services.charge_order_ids(account=self.account)[:1] == [
            method.pk
        ]:
            # The primary leaves the order only once the member has read who takes its place.
            return redirect("charge_order_leave", pk=method.pk)
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


# Where a method tokenised on the server waits while the member confirms it (a bank account that
# cannot pay the account's currency): the gateway's token and what the page shows, never a number.
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
        messages.success(request, _order_message(order, method))
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


class LeaveChargeOrderView(ManagerPage, TemplateView):
    """ "Remove from charge order" asks first: GET says which backup becomes primary (or that nothing
    will be left to charge), POST takes the method out of the order and keeps it on file."""

    template_name = "payments/method_leave_order.html"
    nav = "methods"

    @cached_property
    def method(self):
        return get_for_account(PaymentMethod.objects.active(), account=self.account, pk=self.kwargs["pk"])

    @cached_property
    def order(self):
        return charge_order_entries(account=self.account)

    def get(self, request, *args, **kwargs):
        if not any(e.method_id == self.method.pk for e in self.order):
            return redirect(f"{reverse('payment_methods')}#method-{self.method.pk}")
        return super().get(request, *args, **kwargs)

    def get_page_title(self):
        return _("Remove %(label)s from the charge order?") % {"label": self.method.label}

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        position = next(e.position for e in self.order if e.method_id == self.method.pk)
        context.update(method=self.method, position=position, order=self.order)
        return context

    def post(self, request, pk):
        method = self.method
        try:
            order = services.charge_order_remove(
                account=self.account, actor=request.user, method_id=method.pk, request=request
            )
        except ValidationError as exc:
            for message in exc.messages:
                messages.error(request, message)
        else:
            messages.success(request, _order_message(order, method))
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
