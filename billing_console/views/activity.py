"""The account's activity log: every audit event in one line of plain words, naming the methods
and invoices it concerns."""

import itertools

from django.core.paginator import Paginator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.generic import TemplateView

from accounts.models import Account, AuditEvent, Membership
from accounts.selectors import scoped
from billing_console.templatetags.console import actor_name
from core.exports import csv_response
from core.views import MemberPage
from invoices.models import Invoice
from payments.models import PaymentMethod
from payments.ranks import position_label


def _order_text(order, labels) -> str:
    if not order:
        return _("empty")
    parts = []
    for position, method_id in enumerate(order, start=1):
        label = labels.get(method_id, _("method %(id)s") % {"id": method_id})
        rank = position_label(position)
        parts.append(f"{rank}: {label}")
    return " · ".join(parts)


def _status_label(choices, value) -> str:
    """A stored status in the reader's language ("past_due" -> "Past due" / "支払期限超過")."""
    try:
        return str(choices(value).label)
    except ValueError:
        return str(value or "").replace("_", " ")


def _contacts_text(contacts: dict) -> str:
    return ", ".join(a for a in [contacts.get("billing_email"), *(contacts.get("recipients") or [])] if a)


MEMBER_ACTIONS = (
    AuditEvent.Action.MEMBER_INVITED,
    AuditEvent.Action.INVITATION_CANCELED,
    AuditEvent.Action.MEMBER_JOINED,
    AuditEvent.Action.MEMBER_REMOVED,
)


def describe_event(event: AuditEvent, *, methods: dict, invoices: dict) -> str:
    """The change an audit event records, in one line of plain words."""
    before, after = event.before or {}, event.after or {}
    action = AuditEvent.Action
    if event.action == action.ORDER_CHANGED:
        return _("%(before)s → %(after)s") % {
            "before": _order_text(before.get("order"), methods),
            "after": _order_text(after.get("order"), methods),
        }
    if event.action in (action.METHOD_ADDED, action.METHOD_REMOVED):
        return (after or before).get("label", "")
    if event.action == action.METHOD_UPDATED:
        return _("%(label)s: expiry %(before)s → %(after)s") % {
            "label": after.get("label", ""),
            "before": before.get("exp") or "—",
            "after": after.get("exp") or "—",
        }
    if event.action == action.ACCOUNT_STATUS:
        return _("Account status %(before)s → %(after)s") % {
            "before": _status_label(Account.Status, before.get("status")),
            "after": _status_label(Account.Status, after.get("status")),
        }
    if event.action == action.BILLING_CONTACTS_CHANGED:
        return _("%(before)s → %(after)s") % {
            "before": _contacts_text(before),
            "after": _contacts_text(after),
        }
    if event.action == action.MEMBER_ROLE_CHANGED:
        return _("%(member)s: %(before)s → %(after)s") % {
            "member": after.get("member", ""),
            "before": _status_label(Membership.Role, before.get("role")),
            "after": _status_label(Membership.Role, after.get("role")),
        }
    if event.action in MEMBER_ACTIONS:
        state = after or before
        return _("%(member)s (%(role)s)") % {
            "member": state.get("member", ""),
            "role": _status_label(Membership.Role, state.get("role")),
        }
    if event.object_type == "invoice":
        number = invoices.get(event.object_id) or after.get("number") or event.object_id
        if before.get("status") and after.get("status"):
            return _("Invoice %(number)s: %(before)s → %(after)s") % {
                "number": number,
                "before": _status_label(Invoice.Status, before["status"]),
                "after": _status_label(Invoice.Status, after["status"]),
            }
        return _("Invoice %(number)s") % {"number": number}
    return ""


def event_labels(account, events) -> tuple[dict, dict]:
    """The labels ``describe_event`` names for ``events``: ``({method id: label}, {invoice id:
    number})``, in one query each however many events there are."""
    method_ids, invoice_ids = set(), set()
    for event in events:
        for state in (event.before or {}, event.after or {}):
            method_ids.update(m for m in state.get("order") or [] if isinstance(m, int))
        if event.object_type == "invoice" and event.object_id.isdigit():
            invoice_ids.add(int(event.object_id))
    methods = {
        m.pk: m.label for m in scoped(PaymentMethod.objects, account=account).filter(pk__in=method_ids)
    }
    invoices = {
        str(pk): number
        for pk, number in scoped(Invoice.objects, account=account)
        .filter(pk__in=invoice_ids)
        .values_list("pk", "number")
    }
    return methods, invoices


def _events(account):
    return scoped(AuditEvent.objects, account=account).order_by("-created_at", "-pk")


class ActivityView(MemberPage, TemplateView):
    template_name = "console/activity.html"
    page_title = gettext_lazy("Activity")
    nav = "activity"
    paginate_by = 50

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        page = Paginator(_events(self.account), self.paginate_by).get_page(self.request.GET.get("page"))
        rows = list(page.object_list)
        methods, invoices = event_labels(self.account, rows)
        context.update(
            page_obj=page,
            events=[(event, describe_event(event, methods=methods, invoices=invoices)) for event in rows],
        )
        return context


ACTIVITY_HEADER = [
    gettext_lazy("When"),
    gettext_lazy("Event"),
    gettext_lazy("Details"),
    gettext_lazy("By"),
    gettext_lazy("IP address"),
]
EXPORT_BATCH = 2000


def activity_rows(account):
    """The whole log as CSV rows, newest first, read in batches: each batch's labels in one query
    each, so the export's memory stays that of one batch however long the log."""
    # Each action's words once per export, not once per row (get_action_display looks them up anew).
    actions = {value: str(label) for value, label in AuditEvent.Action.choices}
    events = _events(account).iterator(chunk_size=EXPORT_BATCH)
    for batch in itertools.batched(events, EXPORT_BATCH):
        methods, invoices = event_labels(account, batch)
        for event in batch:
            yield [
                event.created_at,
                actions.get(event.action, event.action),
                describe_event(event, methods=methods, invoices=invoices),
                actor_name(event.actor_label),
                event.ip_address or "",
            ]


class ActivityCsvView(MemberPage, View):
    """The activity log as CSV, every event (the page shows 50 at a time)."""

    http_method_names = ["get", "head"]

    def get(self, request):
        return csv_response(
            filename=f"activity-{self.account.pk}.csv",
            header=ACTIVITY_HEADER,
            rows=activity_rows(self.account),
        )
