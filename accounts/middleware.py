from django.http import Http404
from django.utils.translation import gettext as _

from .selectors import membership_for, memberships_for_user

SESSION_KEY = "current_account_id"
# Paths that choose their account themselves, or not at all.
NOT_CONSOLE = ("/api/", "/admin/", "/static/")


def _requested_account_id(request) -> int | None:
    """The account a console page is opened in with ``?account=``, if the browser is opening it
    as a page of its own (Sec-Fetch headers of a top-level navigation, or none in an older
    browser): not as a frame, an image or a script's request."""
    value = request.GET.get("account")
    if (
        value is None
        or request.method not in ("GET", "HEAD")
        or request.path_info.startswith(NOT_CONSOLE)
        or request.headers.get("Sec-Fetch-Mode", "navigate") != "navigate"
        or request.headers.get("Sec-Fetch-Dest", "document") != "document"
    ):
        return None
    try:
        return int(value)
    except ValueError:
        raise Http404(_("You are not a member of that account.")) from None


class CurrentAccountMiddleware:
    """Puts the member's current account (kept in the session) on ``request.membership``.

    A console page opened with ``?account=<id>`` (as every link in an email is) shows that
    account and makes it the current one, so a member of several accounts lands in the right one;
    naming an account the member does not belong to is a 404, as in the API. Only a page the
    browser opens as a page switches: a frame, an image or a script another site embeds cannot.
    The API reads the same parameter for one request at a time (core.api).

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
            requested = _requested_account_id(request)
            membership = membership_for(
                user=user, account_id=requested or request.session.get(SESSION_KEY), memberships=memberships
            )
            if requested is not None and (membership is None or membership.account_id != requested):
                raise Http404(_("You are not a member of that account."))
            if membership is not None:
                request.membership = membership
                request.account = membership.account
                if request.session.get(SESSION_KEY) != membership.account_id:
                    request.session[SESSION_KEY] = membership.account_id
        return self.get_response(request)
