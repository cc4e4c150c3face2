import hashlib
import logging
import zoneinfo

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm
from django.core.cache import cache
from django.utils.translation import gettext_lazy as _

from .models import Membership, Profile

logger = logging.getLogger(__name__)


def _cache_key(prefix: str, *parts: str) -> str:
    # Hashed: usernames and addresses may hold characters a cache key may not, and the key should
    # not leak them.
    digest = hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]
    return f"{prefix}:{digest}"


def _signin_key(username: str, ip: str) -> str:
    return _cache_key("signin-failures", username.strip().lower(), ip)


def signin_failures(*, username: str, ip: str) -> int:
    return int(cache.get(_signin_key(username, ip), 0))


def _count(key: str, *, window: int) -> int:
    """Add one to the counter ``key`` and return it. A fixed window that starts at the first
    count: the counter lives in the shared cache, so a limit holds across every process and host."""
    cache.add(key, 0, timeout=window)
    try:
        return cache.incr(key)
    except ValueError:  # expired between the two calls
        cache.set(key, 1, timeout=window)
        return 1


def signin_failure_record(*, username: str, ip: str) -> None:
    _count(_signin_key(username, ip), window=settings.SIGNIN_FAILURE_WINDOW_SECONDS)


def signin_failures_clear(*, username: str, ip: str) -> None:
    cache.delete(_signin_key(username, ip))


class ThrottledAuthenticationForm(AuthenticationForm):
    """Django's sign-in form, refusing to check passwords after too many failures."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": _("That username and password do not match. Check them and try again."),
        "throttled": _(
            "Too many failed sign-in attempts. For your security, try again in %(minutes)s minutes "
            "or reset your password."
        ),
    }

    def __init__(self, request=None, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        self.fields["username"].widget.attrs.update({"autocomplete": "username", "autocapitalize": "none"})
        self.fields["password"].widget.attrs.update({"autocomplete": "current-password"})

    def _client_ip(self) -> str:
        return (self.request.META.get("REMOTE_ADDR") if self.request is not None else "") or "unknown"

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        ip = self._client_ip()
        if username and signin_failures(username=username, ip=ip) >= settings.SIGNIN_FAILURES_ALLOWED:
            raise forms.ValidationError(
                self.error_messages["throttled"],
                code="throttled",
                params={"minutes": max(1, settings.SIGNIN_FAILURE_WINDOW_SECONDS // 60)},
            )
        try:
            cleaned = super().clean()
        except forms.ValidationError as exc:
            if username and getattr(exc, "code", None) == "invalid_login":
                signin_failure_record(username=username, ip=ip)
            raise
        if username:
            signin_failures_clear(username=username, ip=ip)
        return cleaned


class ThrottledPasswordResetForm(PasswordResetForm):
    """Django's password reset form, sending at most PASSWORD_RESET_EMAILS_PER_HOUR emails to an
    address, so nobody can flood a member's inbox. Asking again looks the same as ever (the page
    says an email is on its way, whether the address is known or not); it just sends nothing."""

    def get_users(self, email):
        key = _cache_key("password-reset", email.strip().lower())
        if _count(key, window=3600) > settings.PASSWORD_RESET_EMAILS_PER_HOUR:
            logger.warning("Password reset asked for too often for one address in the last hour; not sent")
            return iter(())
        return super().get_users(email)


def time_zone_choices():
    zones = sorted(z for z in zoneinfo.available_timezones() if "/" in z and not z.startswith("Etc/"))
    return [("", _("Site default (%(zone)s)") % {"zone": settings.TIME_ZONE}), ("UTC", "UTC")] + [
        (zone, zone.replace("_", " ")) for zone in zones
    ]


class PreferencesForm(forms.Form):
    """The member's own preferences: language and time zone (profile), optional emails (membership)."""

    language = forms.ChoiceField(
        label=_("Language"),
        required=False,
        choices=[("", _("Same as my browser")), *settings.LANGUAGES],
    )
    time_zone = forms.ChoiceField(label=_("Time zone"), required=False, choices=time_zone_choices)
    email_opt_out = forms.BooleanField(
        label=_("Send me only the emails I must receive"),
        help_text=_(
            "Security notices and failed-payment notices are always sent. This turns off the others, "
            "such as expiry reminders, for this account."
        ),
        required=False,
    )

    def __init__(self, *args, profile: Profile | None, membership: Membership, **kwargs):
        # FormView always passes an (empty) initial: the saved values must fill it, not be skipped.
        kwargs["initial"] = {
            "language": profile.language if profile else "",
            "time_zone": profile.time_zone if profile else "",
            "email_opt_out": membership.email_opt_out,
            **(kwargs.get("initial") or {}),
        }
        super().__init__(*args, **kwargs)
        self.membership = membership

    def save(self, *, user) -> None:
        Profile.objects.update_or_create(
            user=user,
            defaults={
                "language": self.cleaned_data["language"],
                "time_zone": self.cleaned_data["time_zone"],
            },
        )
        Membership.objects.filter(pk=self.membership.pk).update(
            email_opt_out=self.cleaned_data["email_opt_out"]
        )
