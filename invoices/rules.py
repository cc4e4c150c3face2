"""What an invoice's details must be, field by field, in words; ``invoice_data_validate`` puts them
together. Nothing here reads the database, so a file of many rows is checked without a query per row.
"""

import dataclasses
import datetime
import functools
import re
import unicodedata

from babel import Locale
from babel.numbers import get_currency_precision, get_territory_currencies, is_currency
from django.conf import settings
from django.utils.translation import gettext as _

from core.money import format_money

from .models import Invoice

NUMBER_MAX_LENGTH = Invoice._meta.get_field("number").max_length
DESCRIPTION_MAX_LENGTH = Invoice._meta.get_field("description").max_length
ID_MAX = 999_999_999_999_999_999  # the API's ids: up to 18 digits
# Python's dates end at 9999-12-31, and a due date's midnight in a zone east of UTC is the day
# before in UTC: a margin on both ends keeps every conversion inside.
EARLIEST_DATE, LATEST_DATE = datetime.date(1970, 1, 1), datetime.date(9998, 12, 31)
# Control characters (NUL, escapes, line breaks), lone surrogates (text that was not UTF-8) and the
# line and paragraph separators: PostgreSQL refuses NUL, the others break CSV exports and pages.
_REFUSED_IN_TEXT = frozenset({"Cc", "Cs", "Zl", "Zp"})
# In a number, also the invisible ones (bidi overrides, zero-width spaces) and unassigned code
# points: two numbers that look alike must be alike.
_REFUSED_IN_NUMBER = _REFUSED_IN_TEXT | {"Cf", "Co", "Cn"}
# The same for ASCII text, the usual case, without a look-up per character.
_ASCII_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclasses.dataclass(frozen=True)
class InvoiceProblem:
    """One reason details cannot be issued: the ``InvoiceData`` field at fault ("" when it is the
    fields together) and the words for it."""

    field: str
    message: str

    def __str__(self):
        return self.message


def _is_whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _refused_character(value: str, refused: frozenset[str]) -> str | None:
    if value.isascii():
        found = _ASCII_CONTROL.search(value)
        return f"U+{ord(found.group()):04X}" if found else None
    for char in value:
        if unicodedata.category(char) in refused:
            return f"U+{ord(char):04X}"
    return None


@functools.cache
def currencies_in_use() -> frozenset[str]:
    # Known to ISO 4217 is not enough: XXX (no currency), XAU (gold) or a withdrawn code has no
    # card or bank account that pays it.
    today = datetime.date.today()
    return frozenset(
        code
        for territory in Locale("en").territories
        for code in get_territory_currencies(territory, start_date=today, tender=True)
    )


@functools.lru_cache(maxsize=1024)
def _is_known_currency(code: str) -> bool:
    return is_currency(code) and code in currencies_in_use()


@functools.cache
def _precision(currency: str) -> int:
    return get_currency_precision(currency)


def amount_max(currency: str) -> int:
    """The largest amount of an invoice in ``currency``, in minor units: ``BILLING_MAX_INVOICE_AMOUNT``
    major units in the currency's own minor unit (USD cents, JPY none, KWD thousandths)."""
    return settings.BILLING_MAX_INVOICE_AMOUNT * 10 ** _precision(currency)


def id_problem(value) -> str | None:
    if not _is_whole(value) or not 1 <= value <= ID_MAX:
        return _("The account must be given by its id, a positive whole number.")
    return None


def number_problem(value) -> str | None:
    if not isinstance(value, str) or not 1 <= len(value) <= NUMBER_MAX_LENGTH:
        return _("The invoice number must be 1 to 64 characters.")
    if character := _refused_character(value, _REFUSED_IN_NUMBER):
        return _("The invoice number must not contain the character %(character)s.") % {
            "character": character
        }
    if value != value.strip():
        return _("The invoice number must not start or end with a space.")
    return None


def currency_problem(value) -> str | None:
    if not isinstance(value, str) or len(value) != 3 or not value.isascii() or not value.isupper():
        return _("The currency must be an ISO 4217 code such as USD.")
    if not value.isalpha():
        return _("The currency must be an ISO 4217 code such as USD.")
    if not _is_known_currency(value):
        return _("%(code)s is not a known currency.") % {"code": value}
    return None


def amount_problem(value, *, currency: str | None) -> str | None:
    """``currency`` is None when it is itself wrong: then only the sign and type are checked."""
    if not _is_whole(value) or value <= 0:
        return _("The amount must be a positive whole number of minor units (cents, yen …).")
    if currency is not None and value > amount_max(currency):
        highest = amount_max(currency)
        return _("The amount must be at most %(amount)s (%(minor)s in minor units).") % {
            "amount": format_money(highest, currency),
            "minor": highest,
        }
    return None


def date_problem(value, *, due: bool) -> str | None:
    """The issue date's problem, or with ``due`` the due date's."""
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        if EARLIEST_DATE <= value <= LATEST_DATE:
            return None
        return _("%(label)s must be between %(earliest)s and %(latest)s.") % {
            "label": _("The due date") if due else _("The issue date"),
            "earliest": EARLIEST_DATE.isoformat(),
            "latest": LATEST_DATE.isoformat(),
        }
    return _("%(label)s must be a date.") % {"label": _("The due date") if due else _("The issue date")}


def description_problem(value) -> str | None:
    if not isinstance(value, str):
        return _("The description must be text.")
    if len(value) > DESCRIPTION_MAX_LENGTH:
        return _("The description must be at most %(max)s characters, not %(length)s.") % {
            "max": DESCRIPTION_MAX_LENGTH,
            "length": len(value),
        }
    if character := _refused_character(value, _REFUSED_IN_TEXT):
        return _("The description must not contain the character %(character)s.") % {"character": character}
    return None
