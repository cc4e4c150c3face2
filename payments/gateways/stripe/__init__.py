"""The Stripe gateway (``PAYMENT_GATEWAY=stripe``): see gateway.py, and outcomes.py for what each of
Stripe's answers means."""

from .gateway import StripeGateway

__all__ = ["StripeGateway"]
