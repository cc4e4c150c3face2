from .selectors import membership_for, memberships_for_user

SESSION_KEY = "current_account_id"


class CurrentAccountMiddleware:
    """Puts the member's current account (kept in the session) on ``request.membership``.

    The member's memberships are loaded once, for the account switcher and the API as well
    (``request.memberships``, for the user ``request.memberships_user_id``), and with them the
    member's saved language and time zone (``request.member_preferences``, for
    billing_console.middleware.MemberPreferencesMiddleware).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.membership = None
        request.account = None
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            memberships = list(memberships_for_user(user=user, with_preferences=True))
            request.memberships, request.memberships_user_id = memberships, user.pk
            if memberships:
                first = memberships[0]
                request.member_preferences = (first.profile_language or "", first.profile_time_zone or "")
            membership = membership_for(
                user=user, account_id=request.session.get(SESSION_KEY), memberships=memberships
            )
            if membership is not None:
                request.membership = membership
                request.account = membership.account
                if request.session.get(SESSION_KEY) != membership.account_id:
                    request.session[SESSION_KEY] = membership.account_id
        return self.get_response(request)
