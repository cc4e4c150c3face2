"""How the API answers the payment layer's own errors (registered with core.api at start-up)."""

from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, status

from core.api import register_error

from .gateways.base import GatewayUnavailable, InvalidPaymentDetails
from .services import DuplicatePaymentMethod


class GatewayUnavailableError(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = _("The payment gateway is not answering. Try again in a few minutes.")
    default_code = "gateway_unavailable"


class AddMethodThrottled(exceptions.Throttled):
    default_detail = _(
        "Too many payment methods were refused for this account in the last hour. Try again later."
    )


class DuplicateMethodError(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "duplicate_method"


def _duplicate(exc: DuplicatePaymentMethod) -> Exception:
    # "This card is already on file as Visa •••• 4242 (Primary)."
    return DuplicateMethodError(exc.messages[0])


def _invalid_details(exc: InvalidPaymentDetails) -> Exception:
    # The gateway's message never repeats the number that was typed.
    return exceptions.ValidationError({exc.field: [exc.message]}, code=exc.code)


def register() -> None:
    register_error(InvalidPaymentDetails, _invalid_details)
    register_error(DuplicatePaymentMethod, _duplicate)
    register_error(GatewayUnavailable, lambda exc: GatewayUnavailableError())
