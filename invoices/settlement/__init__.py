"""Settlement: charge due invoices to the charge order, falling back in rank, exactly once.

Public entry points (everything else in this package is internal):

- ``settlement_preview(invoice=, as_of=None) -> list[PlanStep]``: what the next run would try and
  skip for an invoice, and why (console preview, dry run).
- ``invoice_pay_now(invoice=, actor=, method=None, request=None) -> InvoiceResult``: a member's "Pay now".
- ``invoice_retry_now(invoice=, actor=) -> InvoiceResult``: support's "Retry now".
- ``settlement_run(...)`` / ``settlement_dry_run(...)``: the scheduled run behind ``settle_invoices``.
"""

from .now import invoice_pay_now, invoice_retry_now
from .outcomes import InvoiceResult, Outcome
from .plan import PlanStep, settlement_preview
from .runner import RunSummary, settlement_dry_run, settlement_run

__all__ = [
    "InvoiceResult",
    "Outcome",
    "PlanStep",
    "RunSummary",
    "invoice_pay_now",
    "invoice_retry_now",
    "settlement_dry_run",
    "settlement_preview",
    "settlement_run",
]
