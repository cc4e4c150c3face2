"""The records support reads and nobody changes: payment attempts, settlement runs, webhook events."""

from django.contrib import admin, messages
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.admin import ReadOnlyAdminMixin, admin_link, changelist_link, pretty_json
from core.money import format_money
from invoices.models import PaymentAttempt, Refund, SettlementRun, WebhookEvent
from invoices.refunds import refund_resolve
from invoices.settlement.keeper import runs_mark_interrupted
from payments.ranks import NOT_IN_ORDER, position_label

from .refunds import disputes_of, disputes_summary, refund_message


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
        "disputes",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("invoice", "method", "run", "initiated_by")

    @admin.display(description=gettext_lazy("disputes"))
    def disputes(self, obj):
        return disputes_summary(disputes_of(attempt=obj))

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


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every refund, support's and those made at the gateway. Made from the invoice's page (its
    Refund button); one whose outcome is unknown is resolved here with the gateway."""

    list_display = ("__str__", "invoice", "amount", "status", "source", "requested_by", "created_at")
    list_filter = ("status", "source", "created_at")
    search_fields = ("invoice__number", "invoice__account__name", "=gateway_reference")
    list_select_related = ("invoice", "requested_by")
    fields = (
        "invoice",
        "attempt",
        "amount",
        "status",
        "source",
        "reason",
        "requested_by",
        "gateway_reference",
        "message",
        "created_at",
        "completed_at",
    )
    readonly_fields = fields
    actions = ("resolve",)

    @admin.display(description=gettext_lazy("amount"), ordering="amount_minor")
    def amount(self, obj):
        return format_money(obj.amount_minor, obj.currency)

    def has_resolve_permission(self, request):
        return request.user.has_perm("invoices.add_refund")

    @admin.action(permissions=["resolve"], description=gettext_lazy("Resolve with the gateway"))
    def resolve(self, request, queryset):
        # The changelist's actions run outside any transaction: the gateway may be called.
        for refund in queryset.filter(status__in=Refund.UNRESOLVED).select_related("invoice"):
            refund = refund_resolve(refund, actor=request.user)
            level = messages.SUCCESS if refund.status == Refund.Status.SUCCEEDED else messages.WARNING
            self.message_user(request, refund_message(refund), level)
