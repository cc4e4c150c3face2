"""The records support reads and nobody changes: payment attempts, settlement runs, webhook events."""

from django.contrib import admin
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.admin import ReadOnlyAdminMixin, admin_link, changelist_link, pretty_json
from core.money import format_money
from invoices.models import PaymentAttempt, SettlementRun, WebhookEvent
from invoices.settlement.keeper import runs_mark_interrupted
from payments.ranks import NOT_IN_ORDER, position_label


@admin.register(PaymentAttempt)
class PaymentAttemptAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "__str__",
        "invoice",
        "created_at",
        "rank",
        "charged_method",
        "status",
        "decline_code",
        "decline_class",
        "skip_reason",
        "trigger",
        "amount",
    )
    list_filter = (
        "status",
        "decline_class",
        ("decline_code", admin.AllValuesFieldListFilter),
        "skip_reason",
        "trigger",
        "created_at",
    )
    search_fields = ("invoice__number", "invoice__account__name", "=idempotency_key", "=gateway_reference")
    list_select_related = ("invoice", "method")
    fields = (
        "invoice",
        "sequence",
        "run",
        "trigger",
        "initiated",
        "retry_round",
        "rank",
        "charged_method",
        "amount",
        "status",
        "decline_code",
        "decline_class",
        "skip_reason",
        "message",
        "idempotency_key",
        "gateway_reference",
        "created_at",
        "completed_at",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("invoice", "method", "run", "initiated_by")

    def lookup_allowed(self, lookup, value, request):
        # An account's page links to all its attempts, two relations away.
        return lookup == "invoice__account__id__exact" or super().lookup_allowed(lookup, value, request)

    @admin.display(description=gettext_lazy("rank"), ordering="position")
    def rank(self, obj):
        return position_label(obj.position, unranked=NOT_IN_ORDER) if obj.method_id else "-"

    @admin.display(description=gettext_lazy("method"))
    def charged_method(self, obj):
        return admin_link(obj.method, obj.method.label) if obj.method else "-"

    @admin.display(description=gettext_lazy("amount"), ordering="amount_minor")
    def amount(self, obj):
        return format_money(obj.amount_minor, obj.currency)

    @admin.display(description=gettext_lazy("initiated by"))
    def initiated(self, obj):
        return obj.initiated_by.get_username() if obj.initiated_by else "-"


@admin.register(SettlementRun)
class SettlementRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("__str__", "status", "duration", "host", "as_of", *SettlementRun.COUNT_FIELDS)
    list_filter = ("status", ("host", admin.AllValuesFieldListFilter), "started_at")
    search_fields = ("=host",)
    fields = (
        "started_at",
        "finished_at",
        "heartbeat_at",
        "duration",
        "host",
        "pid",
        "as_of",
        "status",
        "options_json",
        *SettlementRun.COUNT_FIELDS,
        "attempts_link",
    )
    readonly_fields = fields

    def changelist_view(self, request, extra_context=None):
        # A killed run never says so itself: its stopped heartbeat does.
        runs_mark_interrupted()
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        runs_mark_interrupted()
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description=gettext_lazy("duration"))
    def duration(self, obj):
        seconds = obj.duration_s
        return "-" if seconds is None else f"{seconds:.1f} s"

    @admin.display(description=gettext_lazy("options"))
    def options_json(self, obj):
        return pretty_json(obj.options)

    @admin.display(description=gettext_lazy("attempts"))
    def attempts_link(self, obj):
        return changelist_link(PaymentAttempt, _("Attempts of this run"), run__id__exact=obj.pk)


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """What each gateway told us and what applying it did, for support to read; nobody edits it."""

    list_display = ("event_id", "gateway", "type", "reference", "outcome", "received_at", "processed_at")
    list_filter = ("gateway", "outcome", ("type", admin.AllValuesFieldListFilter), "received_at")
    search_fields = ("=event_id", "=reference", "=attempt__idempotency_key", "attempt__invoice__number")
    list_select_related = ("attempt__invoice",)
    fields = (
        "gateway",
        "event_id",
        "type",
        "reference",
        "attempt_link",
        "payload_json",
        "received_at",
        "processed_at",
        "outcome",
        "error",
    )
    readonly_fields = fields

    @admin.display(description="attempt")
    def attempt_link(self, obj):
        return admin_link(obj.attempt) if obj.attempt else "-"

    @admin.display(description="payload")
    def payload_json(self, obj):
        return pretty_json(obj.payload)
