"""The attempt timeline in plain words (invoices.timeline)."""

import pytest

from invoices.models import PaymentAttempt
from invoices.timeline import attempt_timeline
from tests.factories import InvoiceFactory, PaymentAttemptFactory, PaymentMethodFactory, SettlementRunFactory

pytestmark = pytest.mark.django_db


def _texts(invoice):
    attempts = invoice.attempts.select_related("method", "initiated_by").order_by("sequence")
    return [[(e.text, e.note) for e in group.entries] for group in attempt_timeline(list(attempts))]


def test_a_cascade_told_step_by_step():
    invoice = InvoiceFactory(currency="JPY", amount_minor=12500)
    primary = PaymentMethodFactory(account=invoice.account, last4="0002")
    expired = PaymentMethodFactory(account=invoice.account, last4="0069")
    bank = PaymentMethodFactory(
        account=invoice.account, kind="ach_debit", bank_name="Sandbox Bank", last4="6789"
    )
    PaymentAttemptFactory(
        invoice=invoice, sequence=1, method=primary, position=1, decline_code="insufficient_funds"
    )
    PaymentAttemptFactory(
        invoice=invoice,
        sequence=2,
        method=expired,
        position=2,
        status="skipped",
        idempotency_key=None,
        skip_reason=PaymentAttempt.SkipReason.EXPIRED,
        decline_code="",
        decline_class="",
    )
    PaymentAttemptFactory(
        invoice=invoice, sequence=3, method=bank, position=3, status="pending", decline_code=""
    )
    [steps] = _texts(invoice)
    assert steps[0][0] == "Visa •••• 0002 was declined: insufficient funds — we tried Backup 2 next."
    assert steps[1][0] == "Backup 1 (Visa •••• 0069) was skipped: the method had expired."
    assert (
        steps[2][0] == "The debit of ¥12,500 from Sandbox Bank •••• 6789 (Backup 2) is waiting for the bank."
    )
    assert "Nothing else is charged" in steps[2][1]


def test_rounds_are_grouped_and_unknown_outcomes_explained():
    invoice = InvoiceFactory()
    method = PaymentMethodFactory(account=invoice.account, last4="8013")
    first, second = SettlementRunFactory(), SettlementRunFactory()
    PaymentAttemptFactory(invoice=invoice, sequence=1, method=method, run=first)
    PaymentAttemptFactory(
        invoice=invoice,
        sequence=2,
        method=method,
        run=second,
        retry_round=1,
        status="unknown",
        decline_code="",
        decline_class="",
    )
    groups = attempt_timeline(list(invoice.attempts.select_related("method").order_by("sequence")))
    assert [g.title for g in groups] == ["Scheduled run", "Scheduled run, retry 1"]
    assert groups[0].entries[0].text.endswith("— no other method was left to try.")
    assert (
        groups[1].entries[0].text == "We could not confirm the charge of $125.00 to Visa •••• 8013 (Primary)."
    )
    assert "never charged twice" in groups[1].entries[0].note


def test_no_method_at_all():
    invoice = InvoiceFactory()
    PaymentAttemptFactory(
        invoice=invoice,
        method=None,
        position=None,
        status="skipped",
        idempotency_key=None,
        skip_reason="no_methods",
        decline_code="",
        decline_class="",
    )
    assert _texts(invoice) == [[("Nothing was charged: there is no method in the charge order.", "")]]
