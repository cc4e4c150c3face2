"""The caller's account in the API, and the role checks: every account-scoped API view uses these.

The account is resolved through accounts.selectors, the same lookup the console uses, so an API view
cannot see more than the console would show the same member.
"""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import SAFE_METHODS, BasePermission

from core.api import ID_PATTERN, ID_SCHEMA, is_authenticated

from .middleware import SESSION_KEY
from .models import Membership
from .selectors import membership_for, request_memberships

ACCOUNT_HEADER = "X-Account"
ACCOUNT_QUERY_PARAM = "account"
ACCOUNT_ID_PATTERN = ID_PATTERN
_UNRESOLVED = object()


def _requested_account_id(request) -> int | None:
    """The account named by the X-Account header, else by ``?account=``; None if neither is sent."""
    named = None
    for source, raw in (
        (ACCOUNT_QUERY_PARAM, request.query_params.get(ACCOUNT_QUERY_PARAM)),
        (ACCOUNT_HEADER, request.headers.get(ACCOUNT_HEADER)),
    ):
        if raw is None:
            continue
        if not ACCOUNT_ID_PATTERN.match(raw.strip()):
            raise exceptions.ValidationError(
                {source: [_("Choose an account by its id, a positive whole number.")]}
            )
        named = int(raw)  # the header, read last, wins
    return named


def request_membership(request) -> Membership | None:
    """The caller's membership of the account chosen with ``X-Account`` (or ``?account=``).

    Without a choice it is the account the console has current for this session, else the
    member's first account, as in the console. Naming an account the caller does not belong to is
    a 404: it must not reveal whether the account exists, nor quietly act on another one.
    """
    cached = getattr(request, "_api_membership", _UNRESOLVED)
    if cached is not _UNRESOLVED:
        return cached
    requested = _requested_account_id(request)
    fallback, loaded = None, None
    if isinstance(request.successful_authenticator, SessionAuthentication):
        fallback = request.session.get(SESSION_KEY)
        # The console's middleware already loaded this session user's memberships.
        loaded = request_memberships(request._request, user=request.user)
    membership = membership_for(user=request.user, account_id=requested or fallback, memberships=loaded)
    if requested is not None and (membership is None or membership.account_id != requested):
        raise exceptions.NotFound(_("You are not a member of that account."))
    request._api_membership = membership
    return membership


def request_account(request):
    """The account every queryset of an account-scoped view is restricted to."""
    membership = request_membership(request)
    if membership is None:  # IsAccountMember runs first; this is a programming error
        raise exceptions.PermissionDenied(IsAccountMember.message)
    return membership.account


# Input fields -----------------------------------------------------------------------------------
# JSON has types: a number where the schema says text (or text where it says a number, "yes" for a
# boolean) is refused, not coerced, so the API accepts exactly what its schema documents.

# Permissions ------------------------------------------------------------------------------------


class IsAccountMember(BasePermission):
    message = _("You are not a member of any account.")

    def has_permission(self, request, view):
        return is_authenticated(request) and request_membership(request) is not None


class CanManageBilling(BasePermission):
    """Owners and billing members may change methods and pay; viewers may only read."""

    message = _("Your role in this account can read billing details but not change them.")

    def has_permission(self, request, view):
        if request.method in SAFE_METHODS:
            return True
        membership = request_membership(request) if is_authenticated(request) else None
        return membership is not None and membership.can_manage


ACCOUNT_PERMISSIONS = [IsAccountMember, CanManageBilling]


# The schema -------------------------------------------------------------------------------------

ACCOUNT_PARAMETERS = [
    # Header values are text on the wire; the pattern is ID_SCHEMA's range.
    OpenApiParameter(
        ACCOUNT_HEADER,
        {"type": "string", "pattern": ACCOUNT_ID_PATTERN.pattern.replace("\\Z", "$")},
        OpenApiParameter.HEADER,
        description=_(
            "The account to act on, for members of several accounts (default: the first one). "
            "An account the caller is not a member of is a 404."
        ),
    ),
    OpenApiParameter(
        ACCOUNT_QUERY_PARAM,
        ID_SCHEMA,
        OpenApiParameter.QUERY,
        description=_(
            "The same choice as the X-Account header, for clients that cannot set headers; the header "
            "wins when both are sent."
        ),
    ),
]


class AccountScopedSchema(AutoSchema):
    """Documents the account choice on every operation of an account-scoped view."""

    def get_override_parameters(self):
        return [*ACCOUNT_PARAMETERS, *super().get_override_parameters()]
