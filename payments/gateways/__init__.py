"""Payment gateways, chosen by the PAYMENT_GATEWAY setting."""

from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from .base import Gateway

GATEWAYS = {"sandbox": "payments.gateways.sandbox.SandboxGateway"}


@cache
def _gateway(name: str) -> Gateway:
    return import_string(GATEWAYS[name])()


def get_gateway(name: str | None = None) -> Gateway:
    return _gateway(name or settings.PAYMENT_GATEWAY)
