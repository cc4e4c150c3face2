"""Payment methods and the charge order: thin views over payments.services."""

from .adding import AddPaymentMethodView, ConfirmAddPaymentMethodView
from .methods import RemovePaymentMethodView, UpdateExpiryView
from .order import ChargeOrderActionView, ChargeOrderSetView, LeaveChargeOrderView, PaymentMethodListView

__all__ = [
    "AddPaymentMethodView",
    "ChargeOrderActionView",
    "ChargeOrderSetView",
    "ConfirmAddPaymentMethodView",
    "LeaveChargeOrderView",
    "PaymentMethodListView",
    "RemovePaymentMethodView",
    "UpdateExpiryView",
]
