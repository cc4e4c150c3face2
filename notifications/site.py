"""The console's address for an email's links: where the request that caused the email came to.

Password-reset links are built from the request (its scheme and host, checked against
ALLOWED_HOSTS); the other emails are built the same way when a request causes them, so a console
served on another address or port in development links to itself. An email caused outside a
request (a settlement run, a reminder) links to SITE_URL.
"""

import contextvars

from django.conf import settings
from django.core.exceptions import DisallowedHost

_request_site_url: contextvars.ContextVar[str] = contextvars.ContextVar("request_site_url", default="")


def request_site_url(request) -> str:
    """``scheme://host[:port]`` of ``request``, as a password-reset link starts."""
    return f"{request.scheme}://{request.get_host()}"


def current_site_url() -> str:
    """The address of the request being served, or "" outside one."""
    return _request_site_url.get()


def email_site_url(stored: str) -> str:
    """The address an email's links start with: the one stored with it, else SITE_URL."""
    return (stored or settings.SITE_URL).rstrip("/")


class RequestSiteMiddleware:
    """Remembers the request's address for the emails queued while it is served."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            url = request_site_url(request)
        except DisallowedHost:  # Django answers 400 for the request itself
            url = ""
        token = _request_site_url.set(url)
        try:
            return self.get_response(request)
        finally:
            _request_site_url.reset(token)
