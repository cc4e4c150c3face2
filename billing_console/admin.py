"""The account's admin page as support sees it: accounts/admin.py's account and members, with what
the apps above accounts keep for it (methods in charge order, latest invoices, links to attempts
and emails). Put together here, on the top floor, where every one of those apps is in view.
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import F
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.admin import AccountAdmin
from accounts.models import Account
from core.admin import ReadOnlyAdminMixin, admin_link, changelist_link
from core.money import format_money
from invoices.models import Invoice, PaymentAttempt
from notifications.models import SentEmail
from payments.models import PaymentMethod
from payments.ranks import NOT_IN_ORDER, position_label
from payments.ratelimit import add_method_blocked_until, add_method_failures
from payments.services import add_method_unblock

# An account's change page shows its latest invoices; the rest are one click away.
ACCOUNT_RECENT_INVOICES = 20


class PaymentMethodInline(ReadOnlyAdminMixin, admin.TabularInline):
    """The account's methods in the order settlement charges them; the token is never shown."""

    model = PaymentMethod
    verbose_name_plural = _("payment methods, in charge order")
    fields = ("charge_rank", "method", "kind", "expires", "status", "blocked_reason", "created_at")
    readonly_fields = fields
    extra = 0
    show_change_link = True

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("rank")
            .order_by(F("rank__position").asc(nulls_last=True), "status", "pk")
        )

    @admin.display(description=_("rank"))
    def charge_rank(self, obj):
        entry = getattr(obj, "rank", None)
        return position_label(entry.position if entry else None, unranked=NOT_IN_ORDER)

    @admin.display(description=_("method"))
    def method(self, obj):
        return obj.label

    @admin.display(description=_("expires"))
    def expires(self, obj):
        return f"{obj.exp_month:02d}/{obj.exp_year}" if obj.exp_month and obj.exp_year else "-"


class InvoiceInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Invoice
    verbose_name_plural = _("latest invoices")
    fields = ("invoice", "amount", "status", "due_on", "paid_at", "paid_by", "paid_by_backup")
    readonly_fields = fields
    extra = 0

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("paid_by_method")

    @admin.display(description=_("number"))
    def invoice(self, obj):
        return admin_link(obj, obj.number)

    @admin.display(description=_("amount"))
    def amount(self, obj):
        return format_money(obj.amount_minor, obj.currency)

    @admin.display(description=_("paid by"))
    def paid_by(self, obj):
        return obj.paid_by_method.label if obj.paid_by_method else "-"


@admin.register(Account)
class SupportAccountAdmin(AccountAdmin):
    search_fields = (*AccountAdmin.search_fields, "invoices__number")
    inlines = (*AccountAdmin.inlines, PaymentMethodInline, InvoiceInline)
    fieldsets = (
        *AccountAdmin.fieldsets,
        (_("Adding payment methods"), {"fields": ("add_method_block",)}),
    )
    readonly_fields = (*AccountAdmin.readonly_fields, "add_method_block")

    def get_urls(self):
        return [
            path(
                "<path:object_id>/lift-add-block/",
                self.admin_site.admin_view(self.lift_add_block_view),
                name="accounts_account_lift_add_block",
            ),
            *super().get_urls(),
        ]

    @admin.display(description=_("card-testing pause"))
    def add_method_block(self, obj):
        if obj.pk is None:
            return "-"
        refusals = add_method_failures(account_id=obj.pk)
        until = add_method_blocked_until(account_id=obj.pk)
        if until is None:
            return gettext("Open (refused in the last hour: %(n)s).") % {"n": refusals}
        return format_html(
            '{} <a class="button" href="{}">{}</a>',
            gettext("Paused until %(until)s (refused in the last hour: %(n)s).")
            % {"until": formats.date_format(timezone.localtime(until), "DATETIME_FORMAT"), "n": refusals},
            reverse("admin:accounts_account_lift_add_block", args=[obj.pk]),
            gettext("Lift the pause"),
        )

    def lift_add_block_view(self, request, object_id):
        """Support lifts the card-testing pause (asked first, then audited): for a customer whose
        refusals were honest mistakes, or who has called in."""
        account = self.get_object(request, object_id)
        if account is None:
            raise Http404
        # Support may view accounts and nothing more; lifting the pause takes nothing away.
        if not self.has_view_permission(request, account):
            raise PermissionDenied
        change_url = reverse("admin:accounts_account_change", args=[account.pk])
        if request.method == "POST":
            if add_method_unblock(account=account, actor=request.user, request=request):
                self.message_user(
                    request,
                    gettext("%(account)s can add payment methods again.") % {"account": account.name},
                    messages.SUCCESS,
                )
            else:
                self.message_user(
                    request,
                    gettext("%(account)s was not paused.") % {"account": account.name},
                    messages.INFO,
                )
            return HttpResponseRedirect(change_url)
        until = add_method_blocked_until(account_id=account.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Lift the card-testing pause of %(account)s?") % {"account": account.name},
            "subtitle": None,
            "opts": self.opts,
            "original": account,
            "until": until and timezone.localtime(until),
            "refusals": add_method_failures(account_id=account.pk),
            "change_url": change_url,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/accounts/account/lift_add_block.html", context)

    def get_formset_kwargs(self, request, obj, inline, prefix):
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)
        if isinstance(inline, InvoiceInline) and obj is not None:
            latest = Invoice.objects.filter(account=obj).order_by("-due_on", "-pk").values("pk")
            kwargs["queryset"] = kwargs["queryset"].filter(pk__in=latest[:ACCOUNT_RECENT_INVOICES])
        return kwargs

    def record_links(self, obj) -> list[str]:
        audit_events = super().record_links(obj)
        return [
            changelist_link(Invoice, _("Invoices"), account__id__exact=obj.pk),
            changelist_link(PaymentAttempt, _("Payment attempts"), invoice__account__id__exact=obj.pk),
            changelist_link(PaymentMethod, _("Payment methods"), account__id__exact=obj.pk),
            *audit_events,
            changelist_link(SentEmail, _("Sent emails"), account__id__exact=obj.pk),
        ]
