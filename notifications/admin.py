from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from core.admin import ReadOnlyAdminMixin, pretty_json

from .models import SentEmail


@admin.register(SentEmail)
class SentEmailAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """A record of what was sent to whom; read-only, since its event key is what stops a second send."""

    list_display = ("created_at", "account", "kind", "recipient_list", "status", "sent_at")
    list_filter = ("kind", "status", "created_at")
    search_fields = ("account__name", "account__billing_email", "recipients", "=event_key")
    list_select_related = ("account",)
    fields = (
        "account",
        "kind",
        "event_key",
        "recipient_list",
        "subject",
        "status",
        "deliver_after",
        "error",
        "context_json",
        "created_at",
        "sent_at",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("account")

    @admin.display(description=_("recipients"))
    def recipient_list(self, obj):
        # Each address with the language its copy was written in and the time zone of its times.
        described = []
        for address in obj.recipients:
            how = [part for part in (obj.languages.get(address), obj.time_zones.get(address)) if part]
            described.append(f"{address} ({', '.join(how)})" if how else address)
        return ", ".join(described)

    @admin.display(description=_("context"))
    def context_json(self, obj):
        return pretty_json(obj.context)
