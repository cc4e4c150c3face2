from django.conf import settings
from django.utils.functional import SimpleLazyObject

from accounts.selectors import memberships_for_user


def console(request):
    membership = getattr(request, "membership", None)
    user = getattr(request, "user", None)
    return {
        "membership": membership,
        "current_account": getattr(request, "account", None),
        "can_manage": bool(membership and membership.can_manage),
        # Queried only when a page shows the account switcher.
        "account_memberships": SimpleLazyObject(
            lambda: list(memberships_for_user(user=user)) if user is not None else []
        ),
        "member_time_zone": getattr(request, "member_time_zone", None),
        "max_backups": settings.BILLING_MAX_BACKUPS,
    }
