from .selectors import membership_for

SESSION_KEY = "current_account_id"


class CurrentAccountMiddleware:
    """Puts the member's current account (kept in the session) on ``request.membership``."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.membership = None
        request.account = None
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            membership = membership_for(user=user, account_id=request.session.get(SESSION_KEY))
            if membership is not None:
                request.membership = membership
                request.account = membership.account
                if request.session.get(SESSION_KEY) != membership.account_id:
                    request.session[SESSION_KEY] = membership.account_id
        return self.get_response(request)
