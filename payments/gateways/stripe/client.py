"""The Stripe settings and the one ``StripeClient`` the gateway talks through.

The settings are read when the gateway is used, not when it is loaded: a deployment on the sandbox
needs no Stripe keys. A missing one raises ImproperlyConfigured naming it (``manage.py check`` says so
too when ``PAYMENT_GATEWAY=stripe``). The client never retries on its own (``max_network_retries=0``):
retries are the settlement's, made with the attempt's own idempotency key.
"""

import dataclasses
import functools
import urllib.parse

import stripe
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEFAULT_API_BASE = "https://api.stripe.com"
DEFAULT_JS_URL = "https://js.stripe.com/v3/"
REQUIRED_SETTINGS = ("STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_WEBHOOK_SECRET")
KEY_PREFIXES = {
    "STRIPE_SECRET_KEY": ("sk_", "rk_"),
    "STRIPE_PUBLISHABLE_KEY": ("pk_",),
    "STRIPE_WEBHOOK_SECRET": ("whsec_",),
}
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclasses.dataclass(frozen=True)
class StripeSettings:
    secret_key: str
    publishable_key: str
    webhook_secret: str
    api_base: str
    js_url: str


def settings_errors() -> list[str]:
    """What is wrong with the Stripe settings, one message per setting, naming it."""
    errors = []
    for name in REQUIRED_SETTINGS:
        value = getattr(settings, name, "") or ""
        if not value:
            errors.append(f"{name} is required when the Stripe gateway is used; it is not set.")
        elif not value.startswith(KEY_PREFIXES[name]):
            errors.append(f"{name} must start with {' or '.join(KEY_PREFIXES[name])}.")
    api_base = getattr(settings, "STRIPE_API_BASE", DEFAULT_API_BASE) or DEFAULT_API_BASE
    parts = urllib.parse.urlsplit(api_base)
    if not (parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOCAL_HOSTS)):
        errors.append(
            f"STRIPE_API_BASE must be an https:// address (http:// only on this machine), not {api_base!r}."
        )
    return errors


def stripe_settings() -> StripeSettings:
    errors = settings_errors()
    if errors:
        raise ImproperlyConfigured(" ".join(errors))
    return StripeSettings(
        secret_key=settings.STRIPE_SECRET_KEY,
        publishable_key=settings.STRIPE_PUBLISHABLE_KEY,
        webhook_secret=settings.STRIPE_WEBHOOK_SECRET,
        api_base=(getattr(settings, "STRIPE_API_BASE", "") or DEFAULT_API_BASE).rstrip("/"),
        js_url=getattr(settings, "STRIPE_JS_URL", "") or DEFAULT_JS_URL,
    )


@functools.lru_cache(maxsize=8)
def _client(secret_key: str, api_base: str, timeout: float) -> stripe.StripeClient:
    return stripe.StripeClient(
        secret_key,
        base_addresses={"api": api_base},
        # Ours, not the library's: a retry is made by the settlement with the attempt's own key.
        max_network_retries=0,
        http_client=stripe.RequestsClient(timeout=timeout),
    )


def stripe_client(*, timeout: float | None = None) -> stripe.StripeClient:
    """The client for the current settings (one per key, address and timeout, kept for the process)."""
    config = stripe_settings()
    return _client(config.secret_key, config.api_base, float(timeout or settings.GATEWAY_TIMEOUT_SECONDS))
