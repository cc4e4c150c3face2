from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from core.admin import ReadOnlyAdminMixin

from .models import PaymentMethod
from .ranks import NOT_IN_ORDER, position_label


@admin.register(PaymentMethod)
class PaymentMethodAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Masked methods, read-only: they are added, ranked and removed through the console's audited
    services. The gateway token and the fingerprint are never displayed, nor searchable."""

    list_display = (
        "method",
        "account",
        "kind",
        "charge_rank",
        "expires",
        "status",
        "blocked_reason",
        "created_at",
    )
    list_filter = ("kind", "status")
    search_fields = ("account__name", "account__billing_email", "=last4")
    list_select_related = ("account", "rank")
    fields = (
        "account",
        "method",
        "kind",
        "charge_rank",
        "expires",
        "bank_name",
        "status",
        "blocked_at",
        "blocked_reason",
        "gateway",
        "added_by_name",
        "created_at",
        "updated_at",
        "removed_at",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("account", "rank", "added_by")

    @admin.display(description=_("method"), ordering="last4")
    def method(self, obj):
        return obj.label

    @admin.display(description=_("rank"), ordering="rank__position")
    def charge_rank(self, obj):
        entry = getattr(obj, "rank", None)
        return position_label(entry.position if entry else None, unranked=NOT_IN_ORDER)

    @admin.display(description=_("expires"))
    def expires(self, obj):
        return f"{obj.exp_month:02d}/{obj.exp_year}" if obj.exp_month and obj.exp_year else "-"

    @admin.display(description=_("added by"))
    def added_by_name(self, obj):
        return obj.added_by.get_username() if obj.added_by else "-"
