"""The Stripe settings and the one ``StripeClient`` the gateway talks through.

The settings are read when the gateway is used, not when it is loaded: a deployment on the sandbox
needs no Stripe keys. A missing one raises ImproperlyConfigured naming it (``manage.py check`` says so
too when ``PAYMENT_GATEWAY=stripe``). The client never retries on its own (``max_network_retries=0``):
retries are the settlement's, made with the attempt's own idempotency key.

Every request goes through ``RateLimitedRequestsClient``: it waits for its turn in the bucket that
every process shares (``GATEWAY_MAX_REQUESTS_PER_SECOND``; by default 80 a second with a live key and
20 with a test key, under Stripe's limits of about 100 and 25), and a 429 is waited out and sent again
as it was, with the same idempotency key, a few times; after that the library raises its
RateLimitError, an unknown outcome.
"""

import dataclasses
import email.utils
import functools
import hashlib
import logging
import random
import time
import urllib.parse

import stripe
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from payments.gateways.ratelimit import Bucket, shared_bucket

logger = logging.getLogger("payments.stripe")

DEFAULT_API_BASE = "https://api.stripe.com"
DEFAULT_JS_URL = "https://js.stripe.com/v3/"
REQUIRED_SETTINGS = ("STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_WEBHOOK_SECRET")
KEY_PREFIXES = {
    "STRIPE_SECRET_KEY": ("sk_", "rk_"),
    "STRIPE_PUBLISHABLE_KEY": ("pk_",),
    "STRIPE_WEBHOOK_SECRET": ("whsec_",),
}
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# Requests per second when GATEWAY_MAX_REQUESTS_PER_SECOND does not say, by the key's mode.
DEFAULT_RATE_LIVE = 80
DEFAULT_RATE_TEST = 20
# A 429 is sent again this many times at most, after a wait that doubles each time (with jitter).
RATE_LIMITED_RETRIES = 4
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 8.0


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


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


def is_live_key(secret_key: str) -> bool:
    return secret_key.startswith(("sk_live_", "rk_live_"))


def request_rate(secret_key: str) -> int:
    """Requests per second for this key: the setting, or the default for the key's mode."""
    configured = getattr(settings, "GATEWAY_MAX_REQUESTS_PER_SECOND", 0) or 0
    if configured:
        return int(configured)
    return DEFAULT_RATE_LIVE if is_live_key(secret_key) else DEFAULT_RATE_TEST


def bucket_name(secret_key: str) -> str:
    """One bucket per Stripe account key, named without revealing the key."""
    return "stripe:" + hashlib.sha256(secret_key.encode()).hexdigest()[:24]


def retry_after_seconds(headers, attempt: int, *, rng=random) -> float:
    """How long to wait before sending a request refused with a 429 again: what Retry-After says if
    it says, else a wait that doubles with each refusal, with jitter so that processes refused
    together do not come back together."""
    value = (headers or {}).get("Retry-After", "")
    if value:
        try:
            seconds = float(value)
        except ValueError:  # an HTTP date
            try:
                seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
            except (TypeError, ValueError):
                seconds = None
        if seconds is not None:
            return min(max(seconds, 0.0), BACKOFF_MAX_SECONDS)
    ceiling = min(BACKOFF_BASE_SECONDS * 2**attempt, BACKOFF_MAX_SECONDS)
    return rng.uniform(ceiling / 2, ceiling)


class RateLimitedRequestsClient(stripe.RequestsClient):
    """The library's requests client, taking its turn in the shared bucket before every request and
    sending a request Stripe refused with a 429 again, unchanged (the same idempotency key)."""

    def __init__(self, *, bucket: Bucket, **kwargs):
        super().__init__(**kwargs)
        self.bucket = bucket

    def request(self, method, url, headers, post_data=None):
        for attempt in range(RATE_LIMITED_RETRIES + 1):
            try:
                self.bucket.take()
            except Exception as exc:  # the bucket's store is down: nothing was sent
                raise stripe.APIConnectionError(f"The request bucket is unavailable: {exc}") from exc
            content, status, response_headers = super().request(method, url, headers, post_data)
            if status != 429 or attempt == RATE_LIMITED_RETRIES:
                return content, status, response_headers
            wait = retry_after_seconds(response_headers, attempt)
            logger.warning("Stripe answered 429 to %s %s; sending it again in %.2f s", method, url, wait)
            _sleep(wait)
        raise AssertionError("unreachable")


@functools.lru_cache(maxsize=8)
def _client(secret_key: str, api_base: str, timeout: float, rate: int) -> stripe.StripeClient:
    return stripe.StripeClient(
        secret_key,
        base_addresses={"api": api_base},
        # Ours, not the library's: a retry is made by the settlement with the attempt's own key.
        max_network_retries=0,
        http_client=RateLimitedRequestsClient(
            bucket=shared_bucket(bucket_name(secret_key), rate), timeout=timeout
        ),
    )


def stripe_client(*, timeout: float | None = None) -> stripe.StripeClient:
    """The client for the current settings (one per key, address and timeout, kept for the process)."""
    config = stripe_settings()
    return _client(
        config.secret_key,
        config.api_base,
        float(timeout or settings.GATEWAY_TIMEOUT_SECONDS),
        request_rate(config.secret_key),
    )
