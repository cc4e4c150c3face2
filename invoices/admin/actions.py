"""Support's invoice actions: what each confirmation page says, and the service each one calls."""

import dataclasses
from collections.abc import Callable

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from invoices.models import Invoice
from invoices.services import invoice_mark_uncollectible, invoice_void
from invoices.settlement import Outcome, invoice_retry_now


@dataclasses.dataclass(frozen=True)
class StaffAction:
    """An invoice action as the confirmation page presents it and the changelist performs it."""

    name: str
    title: str
    explanation: str
    submit: str
    # (invoice, actor, request) -> (message level, message)
    perform: Callable[..., tuple[int, str]]
    # Retry charges cards in the request: keep a batch small enough to answer in time.
    limit: int | None = None


RETRY_MESSAGE_LEVELS = {Outcome.PAID: messages.SUCCESS, Outcome.ERROR: messages.ERROR}


def _numbered(invoice: Invoice, text: str) -> str:
    return text if invoice.number in text else f"{invoice.number}: {text}"


def _retry(invoice: Invoice, actor, request) -> tuple[int, str]:
    result = invoice_retry_now(invoice=invoice, actor=actor, request=request)
    text = result.message or _("the retry ended %(outcome)s.") % {"outcome": result.outcome}
    return RETRY_MESSAGE_LEVELS.get(result.outcome, messages.WARNING), _numbered(invoice, text)


def _closing(service, done: str):
    def perform(invoice: Invoice, actor, request) -> tuple[int, str]:
        try:
            service(invoice=invoice, actor=actor, request=request)
        except ValidationError as exc:
            return messages.ERROR, _numbered(invoice, " ".join(exc.messages))
        return messages.SUCCESS, done % {"number": invoice.number}

    return perform


def staff_actions() -> dict[str, StaffAction]:
    # Built per request so the words follow the staff member's language.
    return {
        "retry_now": StaffAction(
            name="retry_now",
            title=_("Retry now"),
            explanation=_(
                "Each invoice below is charged now by the settlement service, exactly as a scheduled "
                "run would: the primary first, then the backups in rank. Its attempts and an audit "
                "event naming you are recorded. An open invoice that is not due yet is left to the "
                "schedule."
            ),
            submit=_("Yes, charge now"),
            perform=_retry,
            limit=20,
        ),
        "void": StaffAction(
            name="void",
            title=pgettext("admin action", "Void"),
            explanation=_(
                "Each invoice below is voided: it will never be charged, and an audit event naming "
                "you is recorded. An invoice with a payment in progress is left alone."
            ),
            submit=_("Yes, void"),
            perform=_closing(invoice_void, _("Invoice %(number)s was voided.")),
        ),
        "mark_uncollectible": StaffAction(
            name="mark_uncollectible",
            title=_("Mark uncollectible"),
            explanation=_(
                "Each invoice below is written off as uncollectible: it will not be charged again, "
                "and an audit event naming you is recorded. An invoice with a payment in progress is "
                "left alone."
            ),
            submit=_("Yes, mark uncollectible"),
            perform=_closing(invoice_mark_uncollectible, _("Invoice %(number)s was marked uncollectible.")),
        ),
    }


def nothing_to_do(invoice: Invoice, *, done: bool) -> str | None:
    """Why an action leaves this invoice alone (only open and past-due invoices are acted on)."""
    if invoice.is_collectable:
        return None
    words = {"number": invoice.number, "status": invoice.get_status_display().lower()}
    if done:
        return _("Invoice %(number)s is %(status)s: there is nothing to do, and nothing was changed.") % words
    return _("Nothing: it is %(status)s.") % words
