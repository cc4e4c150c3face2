"""What a member is told about paying an invoice, read through the settlement's own rules.

The dashboard's verdict, the invoice page's preview and Pay now's "Pay with" list all come from
``plan.plan_inputs`` and the plans it builds, the reader the settlement engine itself uses: a
method the console calls able to pay is one the next run would charge, and one it calls unable
is one the run would skip, for the same reason, in the same words.
"""

import dataclasses
import datetime

from django.conf import settings
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.money import format_money
from invoices.models import Invoice, PaymentAttempt
from payments.models import PaymentMethod

from .plan import PlanStep, plan_inputs

SkipReason = PaymentAttempt.SkipReason

# Why a method is passed over, said of the method ("Visa •••• 4242 has expired", "Your primary
# can't pay EUR invoices", "Sandbox Bank •••• 6789 — can't pay EUR invoices").
SKIP_PHRASES = {
    SkipReason.REMOVED: gettext_lazy("was removed"),
    SkipReason.EXPIRED: gettext_lazy("has expired"),
    SkipReason.CURRENCY: gettext_lazy("can't pay %(currency)s invoices"),
    SkipReason.BLOCKED: gettext_lazy("is blocked by an earlier decline until it is updated"),
    SkipReason.REATTEMPT_CAP: gettext_lazy("was tried too often in the last %(days)s days"),
    SkipReason.DECLINED_IN_RUN: gettext_lazy("was declined earlier in this run"),
}


def skip_phrase(reason: str, *, currency: str) -> str:
    phrase = SKIP_PHRASES.get(reason)
    if phrase is None:
        return str(SkipReason(reason).label) if reason in SkipReason.values else reason
    return str(phrase) % {"currency": currency, "days": settings.BILLING_REATTEMPT_WINDOW_DAYS}


def skip_sentence(method: PaymentMethod | None, reason: str, *, currency: str) -> str:
    """ "SEPA Direct Debit •••• 3000 can't pay USD invoices." """
    if method is None:
        return _("There is no payment method in the charge order.")
    return _("%(method)s %(reason)s.") % {
        "method": method.label,
        "reason": skip_phrase(reason, currency=currency),
    }


def awaiting_words(attempt: PaymentAttempt) -> str:
    """Why nothing else is charged yet, and since when: a bank debit clearing, or a charge the
    payment processor has not confirmed."""
    values = {
        "amount": format_money(attempt.amount_minor, attempt.currency),
        "method": attempt.method.label,
        "since": date_format(timezone.localtime(attempt.created_at), "DATETIME_FORMAT"),
    }
    if attempt.status == PaymentAttempt.Status.PENDING:
        return (
            _(
                "The debit of %(amount)s from %(method)s has been waiting for the bank since %(since)s; "
                "nothing else is charged until the bank confirms or refuses it."
            )
            % values
        )
    return (
        _(
            "The charge of %(amount)s to %(method)s has awaited the payment processor's answer since "
            "%(since)s; nothing else is charged until it is confirmed, so you are never charged twice."
        )
        % values
    )


@dataclasses.dataclass(frozen=True)
class PreviewStep:
    """A step of the next run as the console shows it: a charge, a skip, or an outcome awaited."""

    step: PlanStep
    awaiting: PaymentAttempt | None = None  # this method's charge awaits its outcome


@dataclasses.dataclass(frozen=True)
class Outlook:
    """What the next settlement run will do with one invoice, and what it waits for first."""

    invoice: Invoice
    steps: list[PlanStep]  # the next run's plan, as the engine builds it
    awaiting: PaymentAttempt | None = None  # the oldest attempt awaiting its outcome

    @property
    def charges(self) -> PlanStep | None:
        """The method the next run charges (after the awaited outcome, if it is refused)."""
        return next(
            (step.step for step in self.preview if step.awaiting is None and step.step.will_try), None
        )

    @property
    def primary_skip(self) -> PlanStep | None:
        """The primary, when the run passes it over."""
        first = self.steps[0] if self.steps else None
        return first if first is not None and first.position == 1 and not first.will_try else None

    @property
    def preview(self) -> list[PreviewStep]:
        """The plan as the next run will take it: an outcome awaited is resolved first, and if it
        is refused the run goes on after that method, as the engine resumes."""
        if self.awaiting is None:
            return [PreviewStep(step) for step in self.steps]
        ranks = [i for i, step in enumerate(self.steps) if step.method.pk == self.awaiting.method_id]
        if not ranks:
            waiting = PlanStep(method=self.awaiting.method, position=self.awaiting.position)
            return [PreviewStep(waiting, self.awaiting), *(PreviewStep(step) for step in self.steps)]
        at = ranks[0]
        return [
            PreviewStep(self.steps[at], self.awaiting),
            *(PreviewStep(step) for step in self.steps[at + 1 :]),
        ]


def invoice_outlooks(
    invoices: list[Invoice],
    *,
    as_of: datetime.datetime,
    order: list[tuple[int | None, PaymentMethod]] | None = None,
) -> dict[int | None, Outlook]:
    """The outlook of each of ``invoices`` (of one account when ``order`` is given), by id, read
    with the settlement's own reader in a few queries however many invoices there are. An unsaved
    invoice (the account's next one) is planned as a new invoice would be, under key None."""
    inputs = plan_inputs(invoices=invoices, as_of=as_of, order=order)
    outlooks = {}
    for invoice in invoices:
        unresolved = inputs.unresolved.get(invoice.pk, []) if invoice.pk is not None else []
        outlooks[invoice.pk] = Outlook(
            invoice=invoice,
            steps=inputs.plan_for(invoice, order=order),
            awaiting=unresolved[0] if unresolved else None,
        )
    return outlooks


def invoice_outlook(invoice: Invoice, *, as_of: datetime.datetime) -> Outlook:
    return invoice_outlooks([invoice], as_of=as_of)[invoice.pk]


@dataclasses.dataclass(frozen=True)
class PayNowChoices:
    """What Pay now may charge for one invoice: its charge order, or one method, each with the
    reason it cannot pay (as the Pay now run would skip it), and what it must wait for first."""

    invoice: Invoice
    charge_order: list[PlanStep]  # the charge order as Pay now takes it (from the primary, no resume)
    methods: list[PlanStep]  # each active method once, charge order first, then those on file
    awaiting: PaymentAttempt | None

    @property
    def charge_order_can_pay(self) -> bool:
        return any(step.will_try for step in self.charge_order)

    @property
    def any_can_pay(self) -> bool:
        return self.awaiting is None and (
            self.charge_order_can_pay or any(step.will_try for step in self.methods)
        )

    def step_for(self, method_id: int) -> PlanStep | None:
        return next((step for step in self.methods if step.method.pk == method_id), None)


def pay_now_choices(invoice: Invoice, *, as_of: datetime.datetime) -> PayNowChoices:
    """Every method Pay now could be asked to charge for ``invoice``, each judged by the plan a
    Pay now with that one method would make (``now.invoice_pay_now`` builds the same). A method
    kept twice (one card added twice, the same fingerprint) is offered once: the higher ranked."""
    methods = list(
        PaymentMethod.objects.active().filter(account_id=invoice.account_id).select_related("rank")
    )

    def position(method) -> int | None:
        rank = getattr(method, "rank", None)  # None: kept on file, not in the charge order
        return rank.position if rank is not None else None

    methods.sort(key=lambda m: (position(m) is None, position(m) or 0, -m.created_at.timestamp(), -m.pk))
    ranked = [(position(m), m) for m in methods if position(m) is not None]
    seen, order = set(), []
    for method in methods:
        if method.fingerprint and method.fingerprint in seen:
            continue
        seen.add(method.fingerprint)
        order.append((position(method), method))
    inputs = plan_inputs(invoices=[invoice], as_of=as_of, order=order)
    unresolved = inputs.unresolved.get(invoice.pk, [])
    return PayNowChoices(
        invoice=invoice,
        charge_order=inputs.plan_for(invoice, order=ranked, resume=False),
        methods=inputs.plan_for(invoice, resume=False),
        awaiting=unresolved[0] if unresolved else None,
    )
