"""The API toolkit every app's API shares: strict input fields, the JSON error format and its schema.

Apps teach the error handler about their own exceptions with ``register_error``, from their
``AppConfig.ready()``, so this module imports no app.
"""

import logging
import re
from collections.abc import Callable

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.signals import got_request_exception
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.serializers import PolymorphicProxySerializerExtension
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, PolymorphicProxySerializer
from rest_framework import exceptions, serializers, status
from rest_framework.fields import get_error_detail
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger("core.api")

# A positive id of up to 18 digits: what ID_SCHEMA allows, as text.
ID_PATTERN = re.compile(r"^[1-9][0-9]{0,17}\Z")
# Ids are positive 64-bit integers; ID_PATTERN accepts up to 18 digits.
ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": 999_999_999_999_999_999}

_converters: list[tuple[type[Exception], Callable[[Exception], Exception]]] = []


def register_error(exception: type[Exception], convert: Callable[[Exception], Exception]) -> None:
    """Answer ``exception`` (raised by a service) as the DRF exception ``convert`` returns."""
    _converters.append((exception, convert))


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


def is_authenticated(request) -> bool:
    return bool(request.user and request.user.is_authenticated)


class IsOperatorStaff(BasePermission):
    message = _("Only the operator's staff may do this.")

    def has_permission(self, request, view):
        return is_authenticated(request) and request.user.is_staff


# Errors -----------------------------------------------------------------------------------------


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = _("The request conflicts with the current state.")
    default_code = "conflict"


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
    """Services speak Django (and each app its own errors); the API answers in DRF's exceptions."""
    for exception, convert in _converters:
        if isinstance(exc, exception):
            return convert(exc)
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


def id_parameter(name: str = "id", description: str = "") -> OpenApiParameter:
    # Paths take any segment (<str:…>) so a malformed id is a JSON 404, not Django's HTML one.
    return OpenApiParameter(name, ID_SCHEMA, OpenApiParameter.PATH, description=description)


class OneKindOf(PolymorphicProxySerializer):
    """A request body that is an object of exactly one of several kinds, told apart by the value of
    one field (``kind``): documented as ``type: object`` with a ``oneOf`` of the kinds and a
    discriminator mapping each value to its own schema. Build it with ``one_kind_of``."""


class OneKindOfExtension(PolymorphicProxySerializerExtension):
    target_class = OneKindOf
    priority = 1

    def map_serializer(self, auto_schema, direction):
        # Stated at the top as well as in each branch: without it a bare number or list matched no
        # branch yet was not refused by the schema itself, and fuzzers took it for a valid body.
        field = self.target.resource_type_field_name
        return {
            "type": "object",
            "properties": {field: {"type": "string", "enum": list(self.target.serializers)}},
            "required": [field],
            **super().map_serializer(auto_schema, direction),
        }


def kinds_of(serializer_classes, field: str = "kind") -> dict[str, type[serializers.Serializer]]:
    """``{value: serializer class}`` for serializers that each accept one value of ``field`` (a
    ``ChoiceField`` with one choice): the mapping the API chooses by and the schema documents."""
    mapping = {}
    for serializer_class in serializer_classes:
        [choice] = serializer_class().fields[field].choices
        value = str(choice)  # a plain string, as JSON has it (not a TextChoices member)
        if value in mapping:
            raise ValueError(f"Two serializers accept {field}={value!r}.")
        mapping[value] = serializer_class
    return mapping


def one_kind_of(component_name: str, serializer_classes, field: str = "kind") -> OneKindOf:
    """The schema of a body that is one of ``serializer_classes``, chosen by ``field``."""
    return OneKindOf(
        component_name=component_name,
        serializers=kinds_of(serializer_classes, field),
        resource_type_field_name=field,
    )
