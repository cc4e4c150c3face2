"""Writes to payment methods and the charge order.

Tokenisation happens first, outside any transaction (the gateway is remote): in the customer's
browser where the gateway supports it (``payment_method_setup_start`` / ``_finish``), or on the server
for the sandbox's test numbers (``payment_method_tokenize_card`` …, then ``payment_method_keep``).
The change, its audit event and the security notice then commit together, and
``charge_order_changed`` is sent after the commit (invoices makes a past-due invoice eligible at the
next run). Every way in refuses a method the account already keeps (``payment_method_create``).
"""

from .charge_order import (
    ChargeOrderError,
    charge_order_add_backup,
    charge_order_make_primary,
    charge_order_move,
    charge_order_remove,
    charge_order_set,
)
from .methods import (
    DuplicatePaymentMethod,
    add_method_unblock,
    payment_method_adopt,
    payment_method_create,
    payment_method_duplicate_of,
    payment_method_refresh,
    payment_method_refuse_duplicate,
    payment_method_remove,
    payment_method_setup_finish,
    payment_method_setup_start,
    payment_method_update_expiry,
)
from .notices import charge_order_ids
from .numbers import (
    payment_method_add_ach_debit,
    payment_method_add_card,
    payment_method_add_sepa_debit,
    payment_method_keep,
    payment_method_tokenize_ach_debit,
    payment_method_tokenize_card,
    payment_method_tokenize_sepa_debit,
)

__all__ = [
    "ChargeOrderError",
    "DuplicatePaymentMethod",
    "add_method_unblock",
    "charge_order_add_backup",
    "charge_order_ids",
    "charge_order_make_primary",
    "charge_order_move",
    "charge_order_remove",
    "charge_order_set",
    "payment_method_add_ach_debit",
    "payment_method_add_card",
    "payment_method_add_sepa_debit",
    "payment_method_adopt",
    "payment_method_create",
    "payment_method_duplicate_of",
    "payment_method_keep",
    "payment_method_refresh",
    "payment_method_refuse_duplicate",
    "payment_method_remove",
    "payment_method_setup_finish",
    "payment_method_setup_start",
    "payment_method_tokenize_ach_debit",
    "payment_method_tokenize_card",
    "payment_method_tokenize_sepa_debit",
    "payment_method_update_expiry",
]
