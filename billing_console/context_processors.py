from django.conf import settings
from django.utils.functional import SimpleLazyObject

from accounts.selectors import memberships_for_user, request_memberships


def console(request):
    membership = getattr(request, "membership", None)
    user = getattr(request, "user", None)
    return {
        "membership": membership,
        "current_account": getattr(request, "account", None),
        "can_manage": bool(membership and membership.can_manage),
        # Those the middleware loaded for this user; else queried only when a page shows the switcher.
        "account_memberships": SimpleLazyObject(lambda: _memberships(request, user)),
        "member_time_zone": getattr(request, "member_time_zone", None),
        "max_backups": settings.BILLING_MAX_BACKUPS,
    }


def _memberships(request, user) -> list:
    if user is None:
        return []
    loaded = request_memberships(request, user=user)
    return list(loaded) if loaded is not None else list(memberships_for_user(user=user))
