"""The account's activity log: every audit event in one line of plain words, naming the methods
and invoices it concerns."""

from django.core.paginator import Paginator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.generic import TemplateView

from accounts.models import Account, AuditEvent, Membership
from accounts.selectors import scoped
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


class ActivityView(MemberPage, TemplateView):
    template_name = "console/activity.html"
    page_title = gettext_lazy("Activity")
    nav = "activity"
    paginate_by = 50

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        events = scoped(AuditEvent.objects, account=self.account).order_by("-created_at", "-pk")
        page = Paginator(events, self.paginate_by).get_page(self.request.GET.get("page"))
        rows = list(page.object_list)
        method_ids, invoice_ids = set(), set()
        for event in rows:
            for state in (event.before or {}, event.after or {}):
                method_ids.update(m for m in state.get("order") or [] if isinstance(m, int))
            if event.object_type == "invoice" and event.object_id.isdigit():
                invoice_ids.add(int(event.object_id))
        # One query each for every label on the page, however many events it shows.
        methods = {
            m.pk: m.label
            for m in scoped(PaymentMethod.objects, account=self.account).filter(pk__in=method_ids)
        }
        invoices = {
            str(pk): number
            for pk, number in scoped(Invoice.objects, account=self.account)
            .filter(pk__in=invoice_ids)
            .values_list("pk", "number")
        }
        context.update(
            page_obj=page,
            events=[(event, describe_event(event, methods=methods, invoices=invoices)) for event in rows],
        )
        return context
