"""Each account's customer at the payment processor, created the first time it is needed.

Methods are saved to the customer and charges made for it. The reference is kept in
``GatewayCustomer``, one per account and gateway; creating it is a gateway call, so it happens
outside any transaction, and two requests racing to create it keep one (the other processor
customer is left unused, with nothing saved to it).
"""

from django.db import IntegrityError, connection, transaction

from accounts.models import Account

from .gateways import get_gateway
from .models import GatewayCustomer


def gateway_customer_reference(*, account_id: int, gateway: str | None = None) -> str:
    """The account's customer reference at ``gateway`` (by default the configured one): one query
    once it exists; the first time, a call to the gateway to create it."""
    gateway_impl = get_gateway(gateway)
    found = (
        GatewayCustomer.objects.filter(account_id=account_id, gateway=gateway_impl.name)
        .values_list("reference", flat=True)
        .first()
    )
    if found is not None:
        return found
    if not _outside_transactions():
        raise RuntimeError("A gateway customer must be created outside any database transaction.")
    account = Account.objects.get(pk=account_id)
    reference = gateway_impl.customer_create(
        account_id=account.pk, name=account.name, email=account.billing_email
    )
    try:
        with transaction.atomic():
            GatewayCustomer.objects.create(
                account_id=account.pk, gateway=gateway_impl.name, reference=reference
            )
    except IntegrityError:
        # Another request created the account's customer first: that one is the customer.
        return GatewayCustomer.objects.get(account=account, gateway=gateway_impl.name).reference
    return reference


def _outside_transactions() -> bool:
    # Tests wrap everything in atomic blocks of their own; those don't count.
    return all(getattr(block, "_from_testcase", False) for block in connection.atomic_blocks)
