"""What every API view shares: the caller's account, the role checks, the error format and its schema.

The account is resolved through accounts.selectors, the same lookup the console uses, so an API view
cannot see more than the console would show the same member.
"""

import logging
import re

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.signals import got_request_exception
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import exceptions, serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.fields import get_error_detail
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

from accounts.middleware import SESSION_KEY
from accounts.models import Membership
from accounts.selectors import membership_for, request_memberships
from payments.gateways.base import GatewayUnavailable, InvalidPaymentDetails

logger = logging.getLogger("billing_console.api")

ACCOUNT_HEADER = "X-Account"
ACCOUNT_QUERY_PARAM = "account"
# A positive id of up to 18 digits: what ID_SCHEMA allows, as text.
ACCOUNT_ID_PATTERN = re.compile(r"^[1-9][0-9]{0,17}\Z")
_UNRESOLVED = object()


# The caller's account ---------------------------------------------------------------------------


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


class StrictCharField(serializers.CharField):
    def __init__(self, **kwargs):
        # Whitespace is part of what was sent: trimming it would accept what the schema's lengths refuse.
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    default_error_messages = {"invalid": _("Must be true or false.")}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class StrictDateField(serializers.DateField):
    """A date as YYYY-MM-DD and nothing else (no "2026-1-5", no week dates)."""

    _shape = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")

    def to_internal_value(self, value):
        if not isinstance(value, str) or not self._shape.match(value):
            self.fail("invalid", format="YYYY-MM-DD")
        return super().to_internal_value(value)


# Permissions ------------------------------------------------------------------------------------


def _authenticated(request) -> bool:
    return bool(request.user and request.user.is_authenticated)


class IsAccountMember(BasePermission):
    message = _("You are not a member of any account.")

    def has_permission(self, request, view):
        return _authenticated(request) and request_membership(request) is not None


class CanManageBilling(BasePermission):
    """Owners and billing members may change methods and pay; viewers may only read."""

    message = _("Your role in this account can read billing details but not change them.")

    def has_permission(self, request, view):
        if request.method in SAFE_METHODS:
            return True
        membership = request_membership(request) if _authenticated(request) else None
        return membership is not None and membership.can_manage


ACCOUNT_PERMISSIONS = [IsAccountMember, CanManageBilling]


class IsOperatorStaff(BasePermission):
    message = _("Only the operator's staff may do this.")

    def has_permission(self, request, view):
        return _authenticated(request) and request.user.is_staff


# Errors -----------------------------------------------------------------------------------------


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = _("The request conflicts with the current state.")
    default_code = "conflict"


class GatewayUnavailableError(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = _("The payment gateway is not answering. Try again in a few minutes.")
    default_code = "gateway_unavailable"


class AddMethodThrottled(exceptions.Throttled):
    default_detail = _(
        "Too many payment methods were refused for this account in the last hour. Try again later."
    )


def _flatten(detail, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as one level: {"backups.0": ["…"], "non_field_errors": ["…"]}."""
    if isinstance(detail, dict):
        flat: dict[str, list[str]] = {}
        for key, value in detail.items():
            for path, messages in _flatten(value, f"{prefix}.{key}" if prefix else str(key)).items():
                flat.setdefault(path, []).extend(messages)
        return flat
    if isinstance(detail, list) and any(isinstance(item, dict | list) for item in detail):
        flat = {}
        for index, value in enumerate(detail):
            for path, messages in _flatten(value, f"{prefix}.{index}" if prefix else str(index)).items():
                flat.setdefault(path, []).extend(messages)
        return flat
    items = detail if isinstance(detail, list) else [detail]
    return {prefix or api_settings.NON_FIELD_ERRORS_KEY: [str(item) for item in items]}


def _as_drf(exc: Exception) -> Exception:
    """Services speak Django and the gateway layer; the API answers in DRF's exceptions."""
    if isinstance(exc, InvalidPaymentDetails):
        # The gateway's message never repeats the number that was typed.
        return exceptions.ValidationError({exc.field: [exc.message]}, code=exc.code)
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            return exceptions.ValidationError(
                {
                    field or api_settings.NON_FIELD_ERRORS_KEY: get_error_detail(
                        DjangoValidationError(errors)
                    )
                    for field, errors in exc.error_dict.items()
                }
            )
        return exceptions.ValidationError({api_settings.NON_FIELD_ERRORS_KEY: get_error_detail(exc)})
    if isinstance(exc, GatewayUnavailable):
        return GatewayUnavailableError()
    if isinstance(exc, Http404):
        return exceptions.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied()
    return exc


def api_exception_handler(exc, context):
    """Every error as JSON: {"detail": "…", "code": "…", "errors": {"field": ["…"]}}.

    ``detail`` is one sentence a person can read; ``errors`` (on every 400) holds every message by
    field, nested fields joined with dots ("backups.1").
    """
    exc = _as_drf(exc)
    response = drf_exception_handler(exc, context)
    if response is None:
        request = context.get("request")
        # Logged and signalled as Django would (error reports, the test client re-raising it).
        logger.error("Unhandled error in %s", context.get("view").__class__.__name__, exc_info=exc)
        got_request_exception.send(sender=None, request=getattr(request, "_request", request))
        return Response(
            {"detail": str(_("Something went wrong on our side. Try again later.")), "code": "server_error"},
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        first = next(iter(errors.values()), [str(_("Invalid input."))])[0]
        response.data = {"detail": first, "code": "invalid", "errors": errors}
    elif response.status_code == status.HTTP_400_BAD_REQUEST:  # a body that is not JSON, …
        detail = str(exc.detail)
        response.data = {
            "detail": detail,
            "code": exc.get_codes(),
            "errors": {api_settings.NON_FIELD_ERRORS_KEY: [detail]},
        }
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else response.data.get("detail", "")
        code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        response.data = {"detail": str(detail), "code": code if isinstance(code, str) else "error"}
    return response


# The schema -------------------------------------------------------------------------------------


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text=_("What went wrong, in one sentence."))
    code = serializers.CharField(help_text=_("A stable, machine-readable error code."))


class ValidationErrorSerializer(ErrorSerializer):
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text=_(
            'Every message by field; nested fields are joined with dots ("backups.1"), problems that '
            'concern no single field are under "non_field_errors".'
        ),
    )


_RESPONSES = {
    400: (ValidationErrorSerializer, _("The request was refused: see the field messages.")),
    401: (ErrorSerializer, _("No credentials, or they are not valid.")),
    403: (ErrorSerializer, _("The caller may not do this (a viewer changing billing, a non-staff user …).")),
    404: (
        ErrorSerializer,
        _("No such object in the caller's account, or not a member of the account named."),
    ),
    409: (ErrorSerializer, _("The request conflicts with the current state.")),
    429: (ErrorSerializer, _("Too many attempts; try again later.")),
    500: (ErrorSerializer, _("Something went wrong on our side.")),
    503: (ErrorSerializer, _("The payment gateway is not answering; try again later.")),
}


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    return {code: OpenApiResponse(_RESPONSES[code][0], description=_RESPONSES[code][1]) for code in codes}


# Ids are positive 64-bit integers; ACCOUNT_ID_PATTERN accepts up to 18 digits.
ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": 999_999_999_999_999_999}

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


def id_parameter(name: str = "id", description: str = "") -> OpenApiParameter:
    # Paths take any segment (<str:…>) so a malformed id is a JSON 404, not Django's HTML one.
    return OpenApiParameter(name, ID_SCHEMA, OpenApiParameter.PATH, description=description)
