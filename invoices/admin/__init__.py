"""Support's admin for invoices (invoices.py: retry, void, write off) and the records behind them
(records.py: attempts, settlement runs, webhook events, all read-only)."""

from . import invoices, records

__all__ = ["invoices", "records"]
