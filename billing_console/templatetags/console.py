"""Presentation helpers for the console: money, status badges and method health."""

import datetime
import functools
import unicodedata

from django import template
from django.template import defaultfilters
from django.template.defaultfilters import stringfilter
from django.urls import get_script_prefix, reverse
from django.utils import formats, timezone, translation
from django.utils.encoding import force_str
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from core.money import format_money
from invoices.models import Invoice
from payments.declines import decline_words
from payments.expiry import EXPIRY_WARNING_DAYS
from payments.templatetags.payments import position_label

register = template.Library()


@register.filter
def money(amount_minor, currency):
    if amount_minor is None or not currency:
        return ""
    return format_money(amount_minor, currency)


register.filter("position_label", position_label)


# A pk no object has, to reverse a URL once per name and substitute each object's pk after.
_PK_PLACEHOLDER = 2_147_483_647


@functools.lru_cache(maxsize=64)
def _pk_url_parts(name: str, prefix: str) -> tuple[str, str]:
    # ``prefix`` (the script prefix, part of every reversed URL) is in the key only to keep apart
    # the URLs of two prefixes.
    head, placeholder, tail = reverse(name, args=[_PK_PLACEHOLDER]).rpartition(str(_PK_PLACEHOLDER))
    if not placeholder:
        raise ValueError(f"{name} does not take a pk")
    return head, tail


@register.filter
def pk_url(pk, name):
    """``{% url name pk %}`` for a URL whose only argument is an object's integer pk: reversed once
    per name, not once per row of a list."""
    head, tail = _pk_url_parts(name, get_script_prefix())
    return f"{head}{int(pk)}{tail}"


@register.filter(expects_localtime=True)
def calendar_date(value):
    """``value|date:"DATE_FORMAT"``: "March 4, 2026", "2026年3月4日" in the active language.

    A day's text depends only on the day and the language, so lists that show many dates (and
    the same ones on every visit) format each once per process.
    """
    if type(value) is datetime.date:
        return _calendar_date(value, translation.get_language())
    return defaultfilters.date(value, "DATE_FORMAT")


@register.filter(is_safe=True)
@stringfilter
def clip_chars(value, length):
    """``value|truncatechars:length``, without its character-by-character walk when the text fits."""
    try:
        limit = int(length)
    except ValueError:
        return value  # as truncatechars does
    if limit > 0 and len(value) <= limit and unicodedata.is_normalized("NFC", value):
        return value
    return defaultfilters.truncatechars(value, length)


@functools.lru_cache(maxsize=4096)
def _calendar_date(value: datetime.date, language: str | None) -> str:
    return formats.date_format(value, "DATE_FORMAT")  # ``language`` is the active one


# Every badge carries its words and a shape, never colour alone.
INVOICE_BADGES = {
    "paid": ("success", "✓"),
    "open": ("info", "○"),
    "pending": ("info", "◔"),
    "past_due": ("danger", "!"),
    "uncollectible": ("muted", "✕"),
    "void": ("muted", "–"),
}
ATTEMPT_BADGES = {
    "succeeded": ("success", "✓"),
    "failed": ("danger", "✕"),
    "pending": ("info", "◔"),
    "started": ("info", "◔"),
    "unknown": ("warning", "?"),
    "skipped": ("muted", "↷"),
}


@functools.cache
def _choice_labels(field) -> dict:
    return dict(field.flatchoices)


def choice_label(instance, field_name: str) -> str:
    """What ``instance.get_<field_name>_display()`` returns, without rebuilding the choices each call."""
    field = instance._meta.get_field(field_name)
    value = getattr(instance, field.attname)
    return force_str(_choice_labels(field).get(value, value), strings_only=True)


def badge_html(label, tone: str, icon: str) -> str:
    """A status badge: its words, a shape, and the tone that colours it (the label is escaped).

    A simple tag rather than an included template: lists show one per row.
    """
    return format_html(
        '<span class="badge badge--{}"><span class="badge__icon" aria-hidden="true">{}</span>{}</span>\n',
        tone,
        icon,
        label,
    )


@register.simple_tag
def invoice_badge(invoice, in_flight=None):
    if in_flight is None:
        in_flight = getattr(invoice, "in_flight", False)
    pending = bool(in_flight and invoice.is_collectable)
    return _invoice_badge(invoice.status, pending, translation.get_language())


# Lists show one per row, and there are only a few statuses (times the languages).
@functools.lru_cache(maxsize=256)
def _invoice_badge(status: str, pending: bool, language: str | None) -> str:
    label = force_str(_choice_labels(Invoice._meta.get_field("status")).get(status, status))
    if pending:
        status, label = "pending", pgettext("invoice status", "Pending")
    tone, icon = INVOICE_BADGES.get(status, ("muted", "•"))
    return badge_html(label, tone, icon)


@register.simple_tag
def attempt_badge(attempt):
    tone, icon = ATTEMPT_BADGES.get(attempt.status, ("muted", "•"))
    return badge_html(choice_label(attempt, "status"), tone, icon)


@register.simple_tag
def badge(label, tone="muted", icon="•"):
    return badge_html(label, tone, icon)


def method_problems(method, *, currency: str, today: datetime.date | None = None) -> list[dict]:
    """Why a method cannot pay (level "danger") or soon may not (level "warning")."""
    today = today or timezone.localdate()
    problems = []
    if not method.is_active:
        problems.append({"level": "danger", "text": _("Removed: it will not be charged.")})
        return problems
    if method.needs_replacing:
        problems.append(
            {
                "level": "danger",
                "text": _("Declined: %(reason)s. It will not be charged again; replace it with a new one.")
                % {"reason": decline_words(method.blocked_reason)},
            }
        )
    elif method.blocked_at:
        problems.append(
            {
                "level": "danger",
                "text": _("Declined (%(reason)s): it will not be tried again until you update it.")
                % {"reason": decline_words(method.blocked_reason)},
            }
        )
    expires = method.expires_on()
    if expires is not None:
        if expires < today:
            problems.append({"level": "danger", "text": _("Expired: it cannot pay until it is updated.")})
        elif expires <= today + datetime.timedelta(days=EXPIRY_WARNING_DAYS):
            problems.append(
                {
                    "level": "warning",
                    "text": _("Expires at the end of %(date)s.") % {"date": f"{expires:%m/%Y}"},
                }
            )
    if not method.can_pay_currency(currency):
        problems.append(
            {
                "level": "danger",
                "text": _("Cannot pay invoices in %(currency)s.") % {"currency": currency},
            }
        )
    return problems


@register.simple_tag
def method_health(method, currency, today=None):
    return method_problems(method, currency=currency, today=today)


@register.filter
def expiry(method):
    if method.exp_month and method.exp_year:
        return f"{method.exp_month:02d}/{method.exp_year % 100:02d}"
    return ""


@register.filter
def brand_class(method) -> str:
    if method.kind != "card":
        return "bank"
    return (method.brand or "card").lower().replace(" ", "-")


BRAND_MARKS = {"visa": "VISA", "mastercard": "", "american express": "AMEX", "discover": "DISC", "jcb": "JCB"}


@register.filter
def brand_mark(method) -> str:
    """The short text on the little card picture (Mastercard's is drawn by the stylesheet)."""
    brand = (method.brand or "").lower()
    return BRAND_MARKS.get(brand, brand[:4].upper() or "CARD")


@register.filter
def method_title(method) -> str:
    if method.kind == "card":
        return method.brand or _("Card")
    return method.bank_name or method.get_kind_display()


@register.filter
def actor_name(label: str) -> str:
    """Who made a change in the activity log, in the reader's language: the stored label is English
    for the system's own actors ("settlement", "staff: sam"), a username for a member."""
    if label in ("settlement", "system"):
        return {"settlement": _("Automatic payment run"), "system": _("System")}[label]
    for prefix, words in (("staff: ", _("Support (%(name)s)")), ("import: ", _("Import (%(name)s)"))):
        if label.startswith(prefix):
            return words % {"name": label.removeprefix(prefix)}
    return label


@register.simple_tag(takes_context=True)
def query_with(context, **changes):
    """The current query string with some parameters replaced (for pagination links)."""
    query = context["request"].GET.copy()
    for key, value in changes.items():
        if value in (None, ""):
            query.pop(key, None)
        else:
            query[key] = value
    encoded = query.urlencode()
    return f"?{encoded}" if encoded else "?"
