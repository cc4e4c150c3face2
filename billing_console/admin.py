"""The account's admin page as support sees it: accounts/admin.py's account and members, with what
the apps above accounts keep for it (methods in charge order, latest invoices, links to attempts
and emails). Put together here, on the top floor, where every one of those apps is in view.
"""

from django.contrib import admin
from django.db.models import F
from django.utils.translation import gettext_lazy as _

from accounts.admin import AccountAdmin
from accounts.models import Account
from core.admin import ReadOnlyAdminMixin, admin_link, changelist_link
from core.money import format_money
from invoices.models import Invoice, PaymentAttempt
from notifications.models import SentEmail
from payments.models import PaymentMethod
from payments.ranks import NOT_IN_ORDER, position_label

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
