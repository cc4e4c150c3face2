"""A stored email rendered in the active language: the templates its kind names
(templates/notifications/<kind>.subject.txt, .txt and .html) with the context its caller stored.

The caller (the settlement's emails, payments' notices and reminders) builds the context as JSON
when the event happens: facts, not sentences. Words, money and dates are made at send time, under
each recipient group's language: the templates turn the caller's facts into words with the
callers' own template filters (``{% load payments %}``: ``position|position_label``,
``decline_code|decline_words``; ``{% load invoices %}``: ``skip_reason|skip_reason_words``), and
this module applies two conventions of its own:

- ``amount_minor`` with ``currency``  -> ``amount``, formatted with the currency's own rules;
- ``…_on`` (ISO date), ``…_at`` (ISO date and time) -> date and datetime objects for ``|date``.

They apply at every level of nesting (a list of failures, the fallback method …).

An attachment, too, is made at send time, in the recipient group's language, by the function the
app that knows it registered for the kind (``register_attachment``; a receipt's PDF, by invoices).
"""

import dataclasses
import datetime
import re
from collections.abc import Callable

from django.template import Context
from django.template.loader import get_template
from django.urls import reverse
from django.utils.http import urlencode

from accounts.members import invitation_token
from core.money import format_money

from .models import SentEmail
from .site import email_site_url


@dataclasses.dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    mimetype: str


@dataclasses.dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str
    attachments: tuple[Attachment, ...] = ()


# kind -> a function of the stored context that makes the email's attachment in the active language
# and time zone. The apps above register theirs (invoices: a receipt's PDF) from their ready(): this
# app knows nothing of what they attach.
_ATTACHMENT_MAKERS: dict[str, Callable[[dict], Attachment | None]] = {}


def register_attachment(kind: str, make: Callable[[dict], Attachment | None]) -> None:
    """Attach ``make(context)`` (made at send time, once per language group) to emails of ``kind``."""
    _ATTACHMENT_MAKERS[kind] = make


def localised(value):
    """The stored context ready to render in the active language (see the module's conventions)."""
    if isinstance(value, list):
        return [localised(item) for item in value]
    if not isinstance(value, dict):
        return value
    out = {key: localised(item) for key, item in value.items()}
    for key, item in value.items():
        if isinstance(item, str) and item:
            if key.endswith("_on"):
                out[key] = datetime.date.fromisoformat(item)
            elif key.endswith("_at"):
                out[key] = datetime.datetime.fromisoformat(item)
    if value.get("amount_minor") is not None and value.get("currency"):
        out["amount"] = format_money(value["amount_minor"], value["currency"])
    return out


def _render(name: str, context: dict, *, autoescape: bool) -> str:
    # Subjects and plain text are not HTML: "Smith & Co" must not arrive as "Smith &amp; Co".
    return get_template(name).template.render(Context(context, autoescape=autoescape))


def _tidy(text: str) -> str:
    """Plain text as a person would type it: no trailing spaces, at most one blank line in a row."""
    text = "\n".join(line.rstrip() for line in text.strip().splitlines())
    return re.sub(r"\n{3,}", "\n\n", text) + "\n"


def _paths(context: dict, account_id: int | None) -> dict[str, str]:
    """The console's pages an email links to (after ``site_url``). With ``account_id`` each opens
    in that account, whichever account the member last worked in."""
    query = f"?{urlencode({'account': account_id})}" if account_id is not None else ""
    paths = {
        "methods_path": reverse("payment_methods") + query,
        "activity_path": reverse("activity") + query,
        "settings_path": reverse("settings") + query,
    }
    if context.get("invoice_id") is not None:
        paths["invoice_path"] = reverse("invoice_detail", args=[context["invoice_id"]]) + query
        paths["authenticate_path"] = reverse("invoice_authenticate", args=[context["invoice_id"]]) + query
    if context.get("invitation_id") is not None:
        # Made now, not stored: the outbox (shown in admin) must not hold a working link.
        paths["accept_path"] = reverse("invitation_accept", args=[invitation_token(context["invitation_id"])])
    return paths


def render_email(
    *, kind: str, context: dict, account_name: str, account_id: int | None = None, site_url: str = ""
) -> RenderedEmail:
    """Subject, plain text and HTML of an email of ``kind``, in the active language, from
    templates/notifications/<kind>.subject.txt, .txt and .html (which show the subject as
    ``subject``), for a member of the account ``account_id``: links open the console in it, at
    ``site_url`` (default: SITE_URL; see notifications.site)."""
    stored = context
    context = {
        **localised(context),
        **_paths(context, account_id),
        "kind": kind,
        "account_name": account_name,
        "site_url": email_site_url(site_url),
        # The footer says whether the member could turn this email off in Settings.
        "optional": kind not in SentEmail.ALWAYS_SENT,
    }
    # One line: a header cannot hold a newline. The body's title and heading repeat it.
    subject = " ".join(_render(f"notifications/{kind}.subject.txt", context, autoescape=False).split())
    context["subject"] = subject
    make = _ATTACHMENT_MAKERS.get(kind)
    attachment = make(stored) if make else None
    return RenderedEmail(
        subject=subject,
        text=_tidy(_render(f"notifications/{kind}.txt", context, autoescape=False)),
        html=_render(f"notifications/{kind}.html", context, autoescape=True),
        attachments=(attachment,) if attachment else (),
    )
