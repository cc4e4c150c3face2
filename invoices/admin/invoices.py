"""Support's invoice admin: see why a payment failed, then retry, void or write it off.

Each action first shows a confirmation page listing the invoices (like Django's delete
confirmation), then calls the same service as the console and the commands; the service writes
the audit event naming the staff member. Attempts, settlement runs and webhook events are read-only
for everyone (records.py).

Permissions: ``invoices.change_invoice`` is what the actions need. No field of an invoice is
edited through the admin form (money, status and settlement state change only through services),
so an invoice's change page is read-only even for those who hold it.
"""

import datetime
import functools
import logging

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy

from accounts.models import AuditEvent
from core.admin import ReadOnlyAdminMixin, admin_link, changelist_link
from core.money import format_money
from invoices.models import Invoice, PaymentAttempt
from payments.ranks import NOT_IN_ORDER, position_label

from .actions import StaffAction, nothing_to_do, staff_actions
from .recovery import recovery_view
from .refunds import disputes_of, disputes_summary, refund_view, refunds_summary

logger = logging.getLogger(__name__)

BOTH_PAGES = [admin.ActionLocation.CHANGE_LIST, admin.ActionLocation.CHANGE_FORM]


def attempt_outcome(attempt: PaymentAttempt) -> str:
    """One attempt in plain words: what happened to the charge, or why the method was skipped."""
    status = attempt.status
    if status == PaymentAttempt.Status.SUCCEEDED:
        return _("charged")
    if status == PaymentAttempt.Status.FAILED:
        return _("declined: %(code)s (%(class)s)") % {
            "code": attempt.decline_code or _("no code"),
            "class": attempt.get_decline_class_display().lower() or _("unclassified"),
        }
    if status == PaymentAttempt.Status.SKIPPED:
        return _("skipped: %(reason)s") % {"reason": attempt.get_skip_reason_display()}
    if status == PaymentAttempt.Status.PENDING:
        return _("pending: the bank debit is still clearing")
    return _("outcome not yet known: it is being reconciled with the gateway")


def attempt_line(attempt: PaymentAttempt) -> str:
    if attempt.method is None:
        return attempt_outcome(attempt)
    rank = position_label(attempt.position, unranked=NOT_IN_ORDER)
    return f"{rank} {attempt.method.label} — {attempt_outcome(attempt)}"


def invoice_story(invoice: Invoice, attempts: list[PaymentAttempt]) -> tuple[str, list[str]]:
    """The answer to "why was (or wasn't) this charged, and to which method?": a headline and the
    attempts that explain it."""
    unresolved = [a for a in attempts if a.is_unresolved]
    if unresolved:
        return _("A payment is in progress; nothing else is charged until it is resolved."), [
            attempt_line(a) for a in unresolved
        ]
    if invoice.status == Invoice.Status.PAID:
        paying = next((a for a in attempts if a.pk == invoice.paid_by_attempt_id), None)
        headline = _("Paid on %(when)s by %(method)s (%(rank)s).") % {
            "when": timezone.localtime(invoice.paid_at).strftime("%Y-%m-%d %H:%M"),
            "method": invoice.paid_by_method.label if invoice.paid_by_method else "-",
            "rank": position_label(paying.position if paying else None, unranked=NOT_IN_ORDER),
        }
        if not (invoice.paid_by_backup and paying):
            return headline, []
        before = [a for a in attempts if a.retry_round == paying.retry_round and a.sequence < paying.sequence]
        return (
            headline + " " + _("A backup was charged because, in that round, these could not pay:"),
            [attempt_line(a) for a in before],
        )
    if invoice.status == Invoice.Status.VOID:
        return _("Voided; it will not be charged."), []
    if invoice.status == Invoice.Status.UNCOLLECTIBLE:
        return _("Uncollectible; it will not be charged again."), []
    if not attempts:
        return _("Not attempted yet."), []
    last_round = max(a.retry_round for a in attempts)
    return (
        _("Every method failed in round %(round)s; it is retried on schedule.") % {"round": last_round},
        [attempt_line(a) for a in attempts if a.retry_round == last_round],
    )


class DueFilter(admin.SimpleListFilter):
    title = gettext_lazy("due date")
    parameter_name = "due"

    def lookups(self, request, model_admin):
        return (
            ("overdue", gettext_lazy("Overdue and unpaid")),
            ("today", gettext_lazy("Today")),
            ("next_7_days", gettext_lazy("In the next 7 days")),
            ("past_30_days", gettext_lazy("In the past 30 days")),
            ("this_month", gettext_lazy("This month")),
        )

    def queryset(self, request, queryset):
        today = timezone.localdate()
        match self.value():
            case "overdue":
                return queryset.filter(due_on__lt=today, status__in=Invoice.COLLECTABLE)
            case "today":
                return queryset.filter(due_on=today)
            case "next_7_days":
                return queryset.filter(due_on__gt=today, due_on__lte=today + datetime.timedelta(days=7))
            case "past_30_days":
                return queryset.filter(due_on__lt=today, due_on__gte=today - datetime.timedelta(days=30))
            case "this_month":
                return queryset.filter(due_on__year=today.year, due_on__month=today.month)
        return queryset


class PaymentAttemptInline(ReadOnlyAdminMixin, admin.TabularInline):
    """The invoice's attempts in eight columns, so the whole table fits the change page at 1280 px
    with the sidebar open: what was tried, in which rank, how it ended and why. Each attempt's own
    page (View) has every field."""

    model = PaymentAttempt
    fields = (
        "sequence",
        "created_at",
        "trigger_round",
        "charged_method",
        "outcome",
        "message",
        "initiated",
        "completed_at",
    )
    readonly_fields = fields
    extra = 0
    show_change_link = True

    class Media:
        css = {"all": ["invoices/admin.css"]}

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("method", "initiated_by").order_by("sequence")

    @admin.display(description=gettext_lazy("trigger"))
    def trigger_round(self, obj):
        return format_html(
            '{}<br><span class="quiet">{}</span>',
            obj.get_trigger_display(),
            _("round %(round)s") % {"round": obj.retry_round},
        )

    @admin.display(description=gettext_lazy("method"))
    def charged_method(self, obj):
        if not obj.method:
            return "-"
        rank = position_label(obj.position, unranked=NOT_IN_ORDER)
        return format_html(
            '<span class="quiet">{}</span><br>{}', rank, admin_link(obj.method, obj.method.label)
        )

    @admin.display(description=gettext_lazy("outcome"))
    def outcome(self, obj):
        if obj.decline_code:
            why = (
                f"{obj.decline_code} ({obj.get_decline_class_display()})"
                if obj.decline_class
                else obj.decline_code
            )
        else:
            why = obj.get_skip_reason_display() if obj.skip_reason else ""
        if not why:
            return obj.get_status_display()
        return format_html('{}<br><span class="quiet">{}</span>', obj.get_status_display(), why)

    @admin.display(description=gettext_lazy("initiated by"))
    def initiated(self, obj):
        return obj.initiated_by.get_username() if obj.initiated_by else "-"


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    list_display = (
        "number",
        "account",
        "amount",
        "status",
        "due_on",
        "paid_by",
        "paid_by_backup",
        "next_attempt_at",
    )
    list_filter = ("status", ("currency", admin.AllValuesFieldListFilter), DueFilter, "paid_by_backup")
    search_fields = ("number", "account__name", "account__billing_email")
    list_select_related = ("account", "paid_by_method")
    fieldsets = (
        (
            None,
            {"fields": ("number", "account", "description", "amount", "status", "issued_on", "due_on")},
        ),
        (gettext_lazy("What happened"), {"fields": ("story", "records")}),
        (
            gettext_lazy("Payment"),
            {"fields": ("paid_at", "paid_by", "paid_by_attempt", "paid_by_backup", "voided_at")},
        ),
        (gettext_lazy("Refunds and disputes"), {"fields": ("refunds_list", "disputes")}),
        (
            gettext_lazy("Settlement"),
            {
                "fields": (
                    "next_attempt_at",
                    "first_failed_at",
                    "retry_round",
                    "lease_owner",
                    "lease_expires_at",
                )
            },
        ),
    )
    readonly_fields = (
        "number",
        "account",
        "description",
        "amount",
        "status",
        "issued_on",
        "due_on",
        "story",
        "records",
        "paid_at",
        "paid_by",
        "paid_by_attempt",
        "paid_by_backup",
        "voided_at",
        "refunds_list",
        "disputes",
        "next_attempt_at",
        "first_failed_at",
        "retry_round",
        "lease_owner",
        "lease_expires_at",
    )
    inlines = (PaymentAttemptInline,)
    actions = ("retry_now", "void", "mark_uncollectible")
    change_list_template = "admin/invoices/invoice/change_list.html"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("account", "paid_by_method", "paid_by_attempt")

    # Invoices arrive from the metering system (API, import_invoices) and are never deleted.
    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        # The change permission allows the actions; the form of one invoice is never editable.
        return obj is None and super().has_change_permission(request)

    @admin.display(description=gettext_lazy("amount"), ordering="amount_minor")
    def amount(self, obj):
        return format_money(obj.amount_minor, obj.currency)

    @admin.display(description=gettext_lazy("paid by"))
    def paid_by(self, obj):
        if obj.paid_by_method is None:
            return "-"
        return obj.paid_by_method.label

    def get_urls(self):
        refund = path(
            "<path:object_id>/refund/",
            self.admin_site.admin_view(lambda request, object_id: refund_view(self, request, object_id)),
            name="invoices_invoice_refund",
        )
        report = path(
            "recovery/",
            self.admin_site.admin_view(functools.partial(recovery_view, self)),
            name="invoices_invoice_recovery",
        )
        return [report, refund, *super().get_urls()]

    @admin.display(description=gettext_lazy("refunds"))
    def refunds_list(self, obj):
        # The page behind the button asks for the refund permission itself.
        return refunds_summary(obj)

    @admin.display(description=gettext_lazy("disputes"))
    def disputes(self, obj):
        return disputes_summary(disputes_of(attempt__invoice=obj))

    @admin.display(description=gettext_lazy("summary"))
    def story(self, obj):
        attempts = list(obj.attempts.select_related("method").order_by("sequence"))
        headline, lines = invoice_story(obj, attempts)
        if not lines:
            return headline
        return format_html(
            "{}<ul>{}</ul>", headline, format_html_join("", "<li>{}</li>", ((line,) for line in lines))
        )

    @admin.display(description=gettext_lazy("records"))
    def records(self, obj):
        return format_html(
            "{} · {}",
            changelist_link(AuditEvent, _("Audit events"), object_type="invoice", object_id=obj.pk),
            admin_link(obj.account, _("Account %(name)s") % {"name": obj.account.name}),
        )

    @admin.action(
        permissions=["change"],
        description=gettext_lazy("Retry now"),
        description_plural=gettext_lazy("Retry the selected invoices now"),
        location=BOTH_PAGES,
    )
    def retry_now(self, request, queryset):
        return self._confirm_then_perform(request, queryset, "retry_now")

    @admin.action(
        permissions=["change"],
        description=pgettext_lazy("admin action", "Void"),
        description_plural=gettext_lazy("Void the selected invoices"),
        location=BOTH_PAGES,
    )
    def void(self, request, queryset):
        return self._confirm_then_perform(request, queryset, "void")

    @admin.action(
        permissions=["change"],
        description=gettext_lazy("Mark uncollectible"),
        description_plural=gettext_lazy("Mark the selected invoices uncollectible"),
        location=BOTH_PAGES,
    )
    def mark_uncollectible(self, request, queryset):
        return self._confirm_then_perform(request, queryset, "mark_uncollectible")

    def _confirm_then_perform(self, request, queryset, name: str):
        action = staff_actions()[name]
        invoices = list(queryset.select_related("account").order_by("number"))
        # Performed only when the confirmation is posted to the changelist: Django wraps a change
        # form's POST in a transaction, and a gateway must never be called inside one.
        on_changelist = request.resolver_match.url_name == "invoices_invoice_changelist"
        if request.POST.get("post") == "yes" and on_changelist:
            return self._perform(request, invoices, action)
        return self._confirmation(request, invoices, action, on_changelist=on_changelist)

    def _perform(self, request, invoices: list[Invoice], action: StaffAction):
        if action.limit is not None and len(invoices) > action.limit:
            self.message_user(
                request,
                _("%(action)s takes at most %(limit)s invoices at a time; nothing was done.")
                % {"action": action.title, "limit": action.limit},
                messages.ERROR,
            )
            return None
        for invoice in invoices:
            nothing = nothing_to_do(invoice, done=True)
            if nothing:
                self.message_user(request, nothing, messages.WARNING)
                continue
            try:
                level, text = action.perform(invoice, request.user, request)
            except Exception:
                # One invoice's failure must not hide what happened to the others.
                logger.exception("Admin action %s failed on invoice %s", action.name, invoice.pk)
                level = messages.ERROR
                text = _("Invoice %(number)s: an unexpected error occurred and has been logged.") % {
                    "number": invoice.number
                }
            self.message_user(request, text, level)
        return_to = request.POST.get("_return_to", "")
        if return_to in {str(invoice.pk) for invoice in invoices}:
            return HttpResponseRedirect(reverse("admin:invoices_invoice_change", args=[return_to]))
        return None

    def _confirmation(self, request, invoices: list[Invoice], action: StaffAction, *, on_changelist: bool):
        rows = [
            {"invoice": invoice, "amount": format_money(invoice.amount_minor, invoice.currency)}
            | {"nothing_to_do": nothing_to_do(invoice, done=False)}
            for invoice in invoices
        ]
        to_do = [row["invoice"] for row in rows if not row["nothing_to_do"]]
        changelist_url = reverse("admin:invoices_invoice_changelist")
        return_to = None if on_changelist or len(invoices) != 1 else invoices[0].pk
        context = {
            **self.admin_site.each_context(request),
            "title": _("%(action)s: are you sure?") % {"action": action.title},
            "subtitle": None,
            "opts": self.opts,
            "action": action,
            "rows": rows,
            "to_do": to_do,
            "over_limit": action.limit is not None and len(to_do) > action.limit,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "changelist_url": changelist_url,
            "return_to": return_to,
            "back_url": reverse("admin:invoices_invoice_change", args=[return_to])
            if return_to
            else changelist_url,
            "media": self.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/invoices/invoice/action_confirmation.html", context)
