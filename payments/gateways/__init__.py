"""Payment gateways, each a class named by its dotted path.

``PAYMENT_GATEWAYS`` (a setting; by default ``DEFAULT_GATEWAYS``) maps a gateway's name to the dotted
path of its class; ``PAYMENT_GATEWAY`` names the one that saves new methods and charges. A method
remembers the name of the gateway that saved it, and is charged through that one. A path that cannot
be loaded fails ``manage.py check`` (and so start-up) with a message naming it.
"""

import contextlib
from functools import cache

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from .base import Gateway

DEFAULT_GATEWAYS = {
    "sandbox": "payments.gateways.sandbox.SandboxGateway",
    "stripe": "payments.gateways.stripe.StripeGateway",
}


def gateway_paths() -> dict[str, str]:
    return dict(getattr(settings, "PAYMENT_GATEWAYS", None) or DEFAULT_GATEWAYS)


@cache
def _load(name: str, path: str) -> Gateway:
    try:
        gateway_class = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(f"PAYMENT_GATEWAYS[{name!r}]: cannot import {path!r} ({exc}).") from exc
    if not (isinstance(gateway_class, type) and issubclass(gateway_class, Gateway)):
        raise ImproperlyConfigured(f"PAYMENT_GATEWAYS[{name!r}]: {path!r} is not a Gateway class.")
    gateway = gateway_class()
    if gateway.name != name:
        raise ImproperlyConfigured(
            f"PAYMENT_GATEWAYS[{name!r}]: {path!r} is the {gateway.name!r} gateway, not {name!r}."
        )
    _loaded[name] = gateway
    return gateway


_loaded: dict[str, Gateway] = {}


def get_gateway(name: str | None = None) -> Gateway:
    """The gateway called ``name`` (by default PAYMENT_GATEWAY's), one instance per process.
    Raises ImproperlyConfigured for a name without a path, or a path that does not load."""
    name = name or settings.PAYMENT_GATEWAY
    paths = gateway_paths()
    if name not in paths:
        raise ImproperlyConfigured(
            f"No payment gateway called {name!r}: PAYMENT_GATEWAYS names {', '.join(sorted(paths))}."
        )
    return _load(name, paths[name])


@contextlib.contextmanager
def calls_together():
    """Around calls made from many threads at once: the gateway that charges by default, and every
    other one this process has used, may share what each call would hold on its own
    (``Gateway.calls_together``)."""
    with contextlib.ExitStack() as stack:
        for gateway in {id(g): g for g in (get_gateway(), *_loaded.values())}.values():
            stack.enter_context(gateway.calls_together())
        yield


@checks.register()
def gateways_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Every gateway in PAYMENT_GATEWAYS loads, and PAYMENT_GATEWAY is one of them, with the settings
    it needs (a gateway's ``configuration_errors()``, asked only of the one in use)."""
    errors = []
    paths = gateway_paths()
    for name in dict.fromkeys([settings.PAYMENT_GATEWAY, *paths]):
        try:
            gateway = get_gateway(name)
        except ImproperlyConfigured as exc:
            errors.append(checks.Error(str(exc), id="payments.E001"))
            continue
        if name == settings.PAYMENT_GATEWAY:
            for message in getattr(gateway, "configuration_errors", list)():
                errors.append(checks.Error(f"PAYMENT_GATEWAY={name}: {message}", id="payments.E002"))
    return errors
