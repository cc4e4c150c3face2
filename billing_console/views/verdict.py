"""The dashboard's verdict: what the next settlement run will do with each open invoice, read from
the settlement's own plans (``invoices.settlement.eligibility``), and the one problem it names.

"Your primary can't pay EUR invoices; Visa •••• 4242 (Backup 1) will be charged."
"""

import dataclasses
import datetime

from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from accounts.selectors import scoped
from core.money import format_money
from invoices.models import Invoice
from invoices.settlement.eligibility import (
    Outlook,
    awaiting_words,
    invoice_outlooks,
    skip_phrase,
    skip_sentence,
)
from payments.models import PaymentMethod
from payments.ranks import position_label

# The open invoices the verdict reads: those awaiting an outcome first, then the oldest due. The
# plans cost the same few queries however many there are.
PLANNED_INVOICES = 20
PLAN_FIELDS = ("id", "account_id", "number", "currency", "amount_minor", "due_on", "status", "retry_round")
OVERDUE_SHOWN = 3


@dataclasses.dataclass(frozen=True)
class Verdict:
    alerts: list  # of dashboard.Alert
    all_good: str = ""  # the all-clear, when there is nothing to say


def _charged(step) -> dict:
    return {"method": step.method.label, "rank": position_label(step.position)}


def planned_invoices(*, account) -> list[Invoice]:
    """The open invoices the verdict reads (with ``in_flight``), and one more when there are more:
    ``PLANNED_INVOICES + 1`` at most, awaiting an outcome first, then by due date."""
    return list(
        scoped(Invoice.objects, account=account)
        .collectable()
        .with_in_flight()
        .only(*PLAN_FIELDS)
        .order_by("-in_flight", "due_on", "pk")[: PLANNED_INVOICES + 1]
    )


def next_due_among(planned: list[Invoice]) -> Invoice | bool | None:
    """The open invoice due first (by due date, then id), found among ``planned_invoices``; False
    when they cannot tell (every one of them awaits an outcome, and there are more)."""
    if len(planned) > PLANNED_INVOICES and all(invoice.in_flight for invoice in planned):
        # Those awaiting an outcome come first: an invoice due earlier may be among the rest.
        return False
    # Every invoice awaiting an outcome is here, and the earliest due of the others.
    return min(planned, key=lambda invoice: (invoice.due_on, invoice.pk), default=None)


def account_verdict(
    *, account, can_manage: bool, order, today: datetime.date, alert, planned: list[Invoice] | None = None
) -> Verdict:
    """``order``: the account's charge order entries; ``alert``: the Alert class to build;
    ``planned``: ``planned_invoices(account=account)`` when the caller has read them already."""
    now = timezone.now()
    if planned is None:
        planned = planned_invoices(account=account)
    invoices = planned[:PLANNED_INVOICES]  # a new list: the account's next invoice may join it
    currencies = {invoice.currency for invoice in invoices}
    if account.currency not in currencies:
        # The account's next invoice, planned as a new one would be.
        invoices.append(Invoice(account=account, currency=account.currency, amount_minor=0, retry_round=0))
    outlooks = invoice_outlooks(
        invoices, as_of=now, order=[(entry.position, entry.method) for entry in order]
    )
    alerts, said = [], set()

    def add(new):
        if new.text not in said:
            said.add(new.text)
            alerts.append(new)

    methods_url = reverse("payment_methods")
    overdue = 0
    for invoice in invoices:
        outlook = outlooks[invoice.pk]
        if outlook.awaiting is not None:
            add(_awaiting_alert(outlook, alert))
            continue
        if order:
            problem = _plan_alert(outlook, alert, can_manage=can_manage, methods_url=methods_url)
            if problem is not None:
                add(problem)
        late = invoice.status == Invoice.Status.PAST_DUE or (
            invoice.pk is not None and invoice.due_on < today
        )
        if late and overdue < OVERDUE_SHOWN:
            overdue += 1
            add(_overdue_alert(invoice, alert, can_pay_now=can_manage and outlook.charges is not None))
    if alerts:
        return Verdict(alerts)
    first = outlooks[invoices[0].pk].charges if invoices else None
    if first is None:
        return Verdict([])
    return Verdict([], _("All good: %(method)s (%(rank)s) will pay your next invoice.") % _charged(first))


def _awaiting_alert(outlook: Outlook, alert):
    invoice = outlook.invoice
    text = _("Invoice %(number)s: %(why)s") % {
        "number": invoice.number,
        "why": awaiting_words(outlook.awaiting),
    }
    return alert("info", text, _("View invoice"), reverse("invoice_detail", args=[invoice.pk]))


def _plan_alert(outlook: Outlook, alert, *, can_manage: bool, methods_url: str):
    """The method problem the plan shows: nothing can pay, or the primary is passed over."""
    invoice = outlook.invoice
    charged = outlook.charges
    primary = outlook.primary_skip
    if charged is None:
        reasons = " ".join(
            skip_sentence(step.method, step.skip_reason, currency=invoice.currency) for step in outlook.steps
        )
        if invoice.pk is None:
            text = _("No method in your charge order can pay your next invoice in %(currency)s.") % {
                "currency": invoice.currency
            }
        else:
            text = _("No method in your charge order can pay invoice %(number)s (%(amount)s).") % {
                "number": invoice.number,
                "amount": format_money(invoice.amount_minor, invoice.currency),
            }
        text = f"{text} {reasons}".strip()
        if can_manage:
            return alert(
                "danger", text, _("Add a payment method"), reverse("payment_method_add", args=["card"])
            )
        return alert("danger", text, _("View payment methods"), methods_url)
    if primary is None:
        return None
    text = _("Your primary %(reason)s; %(method)s (%(rank)s) will be charged.") % {
        "reason": skip_phrase(primary.skip_reason, currency=invoice.currency),
        **_charged(charged),
    }
    if (
        can_manage
        and primary.skip_reason == "expired"
        and primary.method.kind == PaymentMethod.Kind.CARD
        and primary.method.is_active
    ):
        return alert(
            "warning",
            text,
            _("Update expiry date"),
            reverse("payment_method_expiry", args=[primary.method.pk]),
        )
    return alert(
        "warning", text, _("Review payment methods") if can_manage else _("View payment methods"), methods_url
    )


def _overdue_alert(invoice: Invoice, alert, *, can_pay_now: bool):
    values = {
        "number": invoice.number,
        "amount": format_money(invoice.amount_minor, invoice.currency),
        "date": date_format(invoice.due_on, "DATE_FORMAT"),
    }
    if invoice.status == Invoice.Status.PAST_DUE:
        text = _("Invoice %(number)s (%(amount)s) is past due since %(date)s.") % values
    else:
        text = _("Invoice %(number)s (%(amount)s) was due on %(date)s and is not paid yet.") % values
    if can_pay_now:
        return alert(
            "danger",
            text,
            _("Pay now"),
            reverse("invoice_pay_now", args=[invoice.pk]),
            action_post=True,
            action_fields=(("next", "dashboard"),),
        )
    return alert("danger", text, _("View invoice"), reverse("invoice_detail", args=[invoice.pk]))
