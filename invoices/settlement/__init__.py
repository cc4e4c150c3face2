"""Settlement: charge due invoices to the charge order, falling back in rank, exactly once.

Public entry points (everything else in this package is internal):

- ``settlement_preview(invoice=, as_of=None) -> list[PlanStep]``: what the next run would try and
  skip for an invoice, and why (console preview, dry run).
- ``invoice_pay_now(invoice=, actor=, method=None, request=None) -> InvoiceResult``: a member's "Pay now".
- ``invoice_retry_now(invoice=, actor=) -> InvoiceResult``: support's "Retry now".
- ``settlement_run(...)``: the scheduled run behind ``manage.py settle_invoices``.
"""
