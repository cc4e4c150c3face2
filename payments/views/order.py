"""The payment methods page and the charge order's changes: ranked by drag and drop (a JSON POST)
or by the buttons that work without JavaScript; leaving the order asks first."""

import json

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views import View
from django.views.generic import TemplateView

from accounts.selectors import get_for_account, scoped
from core.views import ManagerPage, MemberPage

from .. import services
from ..models import PaymentMethod
from ..ranks import position_label
from ..ratelimit import (
    add_method_blocked_until,
    add_method_wait_minutes,
)
from ..selectors import charge_order_entries


def order_message(order_ids: list[int], method: PaymentMethod) -> str:
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
                messages.success(request, order_message(order, method))
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
            messages.success(request, order_message(order, method))
        return redirect(f"{reverse('payment_methods')}#method-{method.pk}")
