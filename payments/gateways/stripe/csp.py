"""The Content-Security-Policy of a page that runs Stripe.js.

Only such pages get it, and only while the Stripe gateway is active: every other page keeps the
strict policy of ``SECURE_CSP``. Stripe.js is a script from STRIPE_JS_URL's origin; its Elements and
3-D Secure run in frames from that origin and hooks.stripe.com; it calls STRIPE_API_BASE's origin.
"""

import urllib.parse
from collections.abc import Mapping

from .client import stripe_settings

STRIPE_JS_ORIGIN = "https://js.stripe.com"
STRIPE_HOOKS_ORIGIN = "https://hooks.stripe.com"


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def stripe_origins() -> dict[str, list[str]]:
    """The origins Stripe.js needs, by directive."""
    config = stripe_settings()
    js = _origin(config.js_url)
    scripts = [js]
    frames = [js, STRIPE_HOOKS_ORIGIN]
    if js == STRIPE_JS_ORIGIN:
        # Stripe.js loads parts of itself from its subdomains.
        scripts.append("https://*.js.stripe.com")
        frames.append("https://*.js.stripe.com")
    return {"script-src": scripts, "frame-src": frames, "connect-src": [_origin(config.api_base)]}


def content_security_policy(policy: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """``policy`` (a ``SECURE_CSP`` mapping) with Stripe's origins added, nothing else loosened. A
    directive the policy leaves to ``default-src`` starts from it."""
    combined = {directive: list(sources) for directive, sources in policy.items()}
    for directive, origins in stripe_origins().items():
        sources = combined.setdefault(directive, list(policy.get("default-src", [])))
        sources.extend(origin for origin in origins if origin not in sources)
    return combined
