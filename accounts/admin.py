"""Support staff's admin: accounts with their members, methods in charge order and invoices.

Nothing here changes money or its history directly: payment methods, attempts, runs and audit
events are read-only for everyone, and invoice changes go through the services (invoices/admin.py).
The `Support` group's permissions are set by accounts/migrations/0002_support_group.py.
"""

import json

from django.contrib import admin
from django.db.models import F
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _
from rest_framework.authtoken.models import TokenProxy

from core.money import format_money
from invoices.models import Invoice, PaymentAttempt
from notifications.models import SentEmail
from payments.models import PaymentMethod

from .models import Account, AuditEvent, Membership

admin.site.site_header = _("Billing support")
admin.site.site_title = _("Billing support")

# An account's change page shows its latest invoices; the rest are one click away.
ACCOUNT_RECENT_INVOICES = 20


class ReadOnlyAdminMixin:
    """A record nobody edits through the admin, superusers included: the view permission shows it,
    and add, change and delete are refused (403)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def rank_label(position: int | None) -> str:
    if position is None:
        return _("Not in the charge order")
    return _("Primary") if position == 1 else _("Backup %(n)s") % {"n": position - 1}


def admin_link(obj, text=None) -> str:
    url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, obj if text is None else text)


def changelist_link(model, text, **filters) -> str:
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    return format_html('<a href="{}?{}">{}</a>', url, urlencode(filters), text)


def pretty_json(value) -> str:
    if value in (None, "", {}, []):
        return "-"
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))


class MembershipInline(ReadOnlyAdminMixin, admin.TabularInline):
    """Members change in the console, where the change is audited; here they are read-only."""

    model = Membership
    fields = ("member", "email", "role", "email_opt_out", "created_at")
    readonly_fields = fields
    extra = 0

    def get_queryset(self, request):
        # The row's title is str(membership), which names the account too.
        return super().get_queryset(request).select_related("user", "account")

    @admin.display(description=_("member"))
    def member(self, obj):
        return obj.user.get_username()

    @admin.display(description=_("email"))
    def email(self, obj):
        return obj.user.email


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
        return rank_label(entry.position if entry else None)

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
class AccountAdmin(admin.ModelAdmin):
    list_display = ("name", "billing_email", "status", "currency", "created_at")
    list_filter = ("status", "currency")
    search_fields = ("name", "billing_email", "memberships__user__email", "invoices__number")
    fieldsets = (
        (None, {"fields": ("name", "billing_email", "status", "currency", "created_at")}),
        (_("Records"), {"fields": ("records",)}),
    )
    # The status moves with settlement (account_set_status), never by hand.
    readonly_fields = ("status", "created_at", "records")
    inlines = (MembershipInline, PaymentMethodInline, InvoiceInline)

    def has_delete_permission(self, request, obj=None):
        # An account anchors invoices, payments and its audit trail.
        return False

    def get_formset_kwargs(self, request, obj, inline, prefix):
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)
        if isinstance(inline, InvoiceInline) and obj is not None:
            latest = Invoice.objects.filter(account=obj).order_by("-due_on", "-pk").values("pk")
            kwargs["queryset"] = kwargs["queryset"].filter(pk__in=latest[:ACCOUNT_RECENT_INVOICES])
        return kwargs

    @admin.display(description=_("all records"))
    def records(self, obj):
        if obj.pk is None:
            return "-"
        links = [
            changelist_link(Invoice, _("Invoices"), account__id__exact=obj.pk),
            changelist_link(PaymentAttempt, _("Payment attempts"), invoice__account__id__exact=obj.pk),
            changelist_link(PaymentMethod, _("Payment methods"), account__id__exact=obj.pk),
            changelist_link(AuditEvent, _("Audit events"), account__id__exact=obj.pk),
            changelist_link(SentEmail, _("Sent emails"), account__id__exact=obj.pk),
        ]
        return format_html_join(" · ", "{}", ((link,) for link in links))


# Audit events name the model they concern by its model name; these are the ones with a page here.
AUDITED_OBJECT_URLS = {
    "account": "admin:accounts_account_change",
    "invoice": "admin:invoices_invoice_change",
    "paymentmethod": "admin:payments_paymentmethod_change",
    "paymentattempt": "admin:invoices_paymentattempt_change",
}


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "account", "action", "actor_label", "object", "ip_address")
    list_filter = ("action", "created_at")
    search_fields = ("account__name", "actor_label", "=object_id")
    list_select_related = ("account",)
    fields = (
        "created_at",
        "account",
        "action",
        "actor_label",
        "object",
        "before_json",
        "after_json",
        "ip_address",
        "user_agent",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("account")

    @admin.display(description=_("object"))
    def object(self, obj):
        if not obj.object_type:
            return "-"
        url_name = AUDITED_OBJECT_URLS.get(obj.object_type)
        text = f"{obj.object_type} {obj.object_id}"
        if url_name is None:
            return text
        return format_html('<a href="{}">{}</a>', reverse(url_name, args=[obj.object_id]), text)

    @admin.display(description=_("before"))
    def before_json(self, obj):
        return pretty_json(obj.before)

    @admin.display(description=_("after"))
    def after_json(self, obj):
        return pretty_json(obj.after)


# API tokens are credentials: nobody reads them back, not even a superuser. Members revoke
# their own through the API.
if admin.site.is_registered(TokenProxy):
    admin.site.unregister(TokenProxy)
