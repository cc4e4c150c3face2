"""Money for people: integer minor units shown with the currency's own rules (Babel)."""

import functools
from decimal import Decimal

from babel.numbers import format_currency, get_currency_precision
from django.utils import translation


def to_major(amount_minor: int, currency: str) -> Decimal:
    """12_500 USD -> Decimal("125.00"); 1_200 JPY -> Decimal("1200"); never a float."""
    return Decimal(amount_minor).scaleb(-get_currency_precision(currency))


def format_money(amount_minor: int, currency: str, locale: str | None = None) -> str:
    """In ``locale`` (default: the active language); JPY shows no decimals, KWD three."""
    locale = translation.to_locale(locale or translation.get_language() or "en")
    return _format_money(int(amount_minor), currency, locale)


# Babel's formatting is slow next to the rest of a page, and lists show the same amounts over and
# over (a plan's price, in one or two languages): the text depends on nothing but these three.
@functools.lru_cache(maxsize=4096)
def _format_money(amount_minor: int, currency: str, locale: str) -> str:
    amount = to_major(amount_minor, currency)
    try:
        return format_currency(amount, currency, locale=locale)
    except (ValueError, LookupError):
        return format_currency(amount, currency, locale="en")


def to_minor(amount: Decimal, currency: str) -> int:
    """Decimal("125.00") USD -> 12_500; ValueError for finer than the currency's minor unit
    (Decimal("1.5") JPY, Decimal("0.001") USD)."""
    scaled = Decimal(amount).scaleb(get_currency_precision(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} {currency} is finer than its minor unit.")
    return int(scaled)
