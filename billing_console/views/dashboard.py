import dataclasses
import datetime

from django.db.models import Count, Sum
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import AuditEvent
from accounts.selectors import scoped
from core.views import ConsolePage
from invoices.models import Invoice
from payments.expiry import EXPIRY_WARNING_DAYS
from payments.models import PaymentMethod
from payments.selectors import charge_order_entries

from .verdict import PLANNED_INVOICES, account_verdict, next_due_among, planned_invoices

# What PaymentMethod.label reads.
METHOD_LABEL_FIELDS = ("kind", "brand", "last4", "bank_name")
# What the dashboard shows of an invoice (a line in a list, a warning): no settlement state.
SUMMARY_FIELDS = (
    "id",
    "number",
    "currency",
    "amount_minor",
    "issued_on",
    "due_on",
    "status",
    "paid_by_backup",
)


@dataclasses.dataclass(frozen=True)
class Alert:
    """Something that needs the member's attention, with the one action that fixes it."""

    level: str  # "info", "warning" or "danger"
    text: str
    action_label: str = ""
    action_url: str = ""
    action_post: bool = False  # a button that POSTs (with its hidden fields) rather than a link
    action_fields: tuple = ()


def dashboard_warnings(*, account, can_manage: bool, order, today: datetime.date) -> list[Alert]:
    """What needs attention in the charge order itself, and what the last payment showed; the
    verdict on the open invoices is ``verdict.account_verdict``'s."""
    warnings = []
    methods_url = reverse("payment_methods")
    primary = order[0].method if order else None
    if primary is None:
        warnings.append(
            Alert(
                "danger",
                _("There is no payment method in your charge order, so invoices cannot be paid."),
                _("Add a payment method") if can_manage else _("View payment methods"),
                reverse("payment_method_add", args=["card"]) if can_manage else methods_url,
            )
        )
    else:
        # An expired primary is the verdict's to tell (it names the method charged instead).
        expires = primary.expires_on()
        if expires is not None and today <= expires <= today + datetime.timedelta(days=EXPIRY_WARNING_DAYS):
            text = _("Your primary method %(label)s expires on %(date)s.") % {
                "label": primary.label,
                "date": date_format(expires, "YEAR_MONTH_FORMAT"),
            }
            if can_manage:
                warnings.append(
                    Alert(
                        "warning",
                        text,
                        _("Update expiry date"),
                        reverse("payment_method_expiry", args=[primary.pk]),
                    )
                )
            else:
                warnings.append(Alert("warning", text, _("View payment methods"), methods_url))
    if primary is not None and len(order) < 2:
        unranked = (
            scoped(PaymentMethod.objects.active(), account=account)
            .filter(rank__isnull=True)
            .order_by("-created_at", "-pk")
            .first()
        )
        text = _("No backup method is set: if your primary is declined, the invoice goes past due.")
        if not can_manage:
            warnings.append(Alert("warning", text, _("View payment methods"), methods_url))
        elif unranked is not None:
            warnings.append(
                Alert(
                    "warning",
                    text,
                    _("Add %(label)s to backups") % {"label": unranked.label},
                    reverse("charge_order_action", args=[unranked.pk]),
                    action_post=True,
                    action_fields=(("action", "add_to_backups"), ("next", "dashboard")),
                )
            )
        else:
            warnings.append(
                Alert("warning", text, _("Add a backup method"), reverse("payment_method_add", args=["card"]))
            )
    last_paid = (
        scoped(Invoice.objects.select_related("paid_by_method"), account=account)
        .filter(status=Invoice.Status.PAID)
        .order_by("-paid_at", "-pk")
        # The number, whether a backup paid, and what the method's label is made of.
        .only("id", "number", "paid_by_backup", *(f"paid_by_method__{name}" for name in METHOD_LABEL_FIELDS))
        .first()
    )
    if last_paid is not None and last_paid.paid_by_backup:
        warnings.append(
            Alert(
                "warning",
                _("Your last invoice, %(number)s, was paid by a backup (%(label)s), not by your primary.")
                % {"number": last_paid.number, "label": last_paid.paid_by_method.label},
                _("See what happened"),
                reverse("invoice_detail", args=[last_paid.pk]),
            )
        )
    return warnings


def amount_due_by_currency(invoices, *, planned: list[Invoice]) -> list[dict]:
    """What is due per currency (``currency``, ``total``, ``count``), by currency: added up from
    ``planned`` (``verdict.planned_invoices``) when they are every open invoice, else by the
    database."""
    if len(planned) <= PLANNED_INVOICES:
        rows = [
            {"currency": invoice.currency, "total": invoice.amount_minor, "count": 1} for invoice in planned
        ]
    else:
        rows = (
            invoices.collectable()
            .values("currency")
            .annotate(total=Sum("amount_minor"), count=Count("pk"))
            .order_by("currency")
        )
    due = {}
    for row in rows:
        total = due.setdefault(row["currency"], {"currency": row["currency"], "total": 0, "count": 0})
        total["total"] += row["total"]
        total["count"] += row["count"]
    return [due[currency] for currency in sorted(due)]


class DashboardView(ConsolePage):
    template_name = "console/dashboard.html"
    page_title = gettext_lazy("Dashboard")
    nav = "dashboard"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        account = self.account
        today = timezone.localdate()
        invoices = scoped(Invoice.objects, account=account)
        # The verdict's invoices also tell which one is due next, and when they are all the open
        # invoices, what is due (the summary shows no more of them).
        planned = planned_invoices(account=account)
        amount_due = amount_due_by_currency(invoices, planned=planned)
        order = charge_order_entries(account=account)
        summaries = invoices.only(*SUMMARY_FIELDS).with_in_flight()
        can_manage = self.membership.can_manage
        verdict = account_verdict(
            account=account, can_manage=can_manage, order=order, today=today, alert=Alert, planned=planned
        )
        next_due = next_due_among(planned) if amount_due else None
        if next_due is False:
            next_due = summaries.collectable().order_by("due_on", "pk").first()
        context.update(
            amount_due=amount_due,
            open_count=sum(row["count"] for row in amount_due),
            next_due=next_due,
            order=order,
            today=today,
            warnings=[
                *dashboard_warnings(account=account, can_manage=can_manage, order=order, today=today),
                *verdict.alerts,
            ],
            all_good=verdict.all_good,
            recent_invoices=list(summaries.order_by("-issued_on", "-pk")[:5]),
            recent_activity=list(
                scoped(AuditEvent.objects, account=account)
                .only("created_at", "action", "actor_label")
                .order_by("-created_at", "-pk")[:5]
            ),
        )
        return context
