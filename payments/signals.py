"""What payments announces to the apps above it, which it may not import.

Each signal is sent once the transaction that made the change has committed, never from inside it.
"""

import django.dispatch
from django.db import transaction

from .models import ChargeOrderEntry

# The methods settlement may charge for an account changed: a method was added, its expiry was
# updated, or the charge order was re-ranked. Something that failed before may pay now.
# Sent with ``account_id``.
charge_order_changed = django.dispatch.Signal()


def charge_order_changed_on_commit(*, account_id: int) -> None:
    """Send ``charge_order_changed`` for the account when the current transaction commits."""
    # On commit, not inside: this transaction holds the account's row lock, and a settlement run
    # locks invoices before accounts, so writing invoices here could deadlock with it; the
    # customer's change must not fail for that. A crash in between leaves an invoice on its schedule.
    transaction.on_commit(
        lambda: charge_order_changed.send(sender=ChargeOrderEntry, account_id=account_id),
        robust=True,
    )
