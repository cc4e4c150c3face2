"""Support staff's admin: accounts with their members and audit events (the helpers every app's
admin uses are in core/admin.py). The account's page as support sees it, with the methods,
invoices and emails of the apps above accounts, is put together in billing_console/admin.py.

Nothing here changes money or its history directly: payment methods, attempts, runs and audit
events are read-only for everyone, and invoice changes go through the services (invoices/admin/).
The `Support` group's permissions are set by accounts/migrations/0002_support_group.py.
"""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from rest_framework.authtoken.models import TokenProxy

from core.admin import ReadOnlyAdminMixin, changelist_link, pretty_json

from .models import AuditEvent, Membership

admin.site.site_header = _("Billing support")
admin.site.site_title = _("Billing support")


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


class AccountAdmin(admin.ModelAdmin):
    """An account and its members. Registered by billing_console/admin.py, which adds what the apps
    above accounts keep for it: its payment methods, invoices and emails."""

    list_display = ("name", "billing_email", "status", "currency", "created_at")
    list_filter = ("status", "currency")
    search_fields = ("name", "billing_email", "memberships__user__email")
    fieldsets = (
        (
            None,
            {"fields": ("name", "billing_email", "billing_recipients", "status", "currency", "created_at")},
        ),
        (_("Records"), {"fields": ("records",)}),
    )
    # The status moves with settlement (account_set_status), never by hand; the further billing
    # recipients change in the console, where the change is audited and told to the owners.
    readonly_fields = ("billing_recipients", "status", "created_at", "records")
    inlines = (MembershipInline,)

    def has_delete_permission(self, request, obj=None):
        # An account anchors invoices, payments and its audit trail.
        return False

    def record_links(self, obj) -> list[str]:
        """Links to the account's records in other lists, in the order the page shows them."""
        return [changelist_link(AuditEvent, _("Audit events"), account__id__exact=obj.pk)]

    @admin.display(description=_("all records"))
    def records(self, obj):
        if obj.pk is None:
            return "-"
        return format_html_join(" · ", "{}", ((link,) for link in self.record_links(obj)))


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
