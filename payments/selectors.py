"""Reads of payment methods and the charge order that pages share."""

from accounts.selectors import scoped

from .models import ChargeOrderEntry


def charge_order_entries(*, account) -> list[ChargeOrderEntry]:
    """The account's charge order, primary first, with each entry's method."""
    return list(
        scoped(ChargeOrderEntry.objects.select_related("method"), account=account).order_by("position")
    )
