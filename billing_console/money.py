"""Money for people: integer minor units shown with the currency's own rules (Babel)."""

from decimal import Decimal

from babel.numbers import format_currency, get_currency_precision
from django.utils import translation


def to_major(amount_minor: int, currency: str) -> Decimal:
    """12_500 USD -> Decimal("125.00"); 1_200 JPY -> Decimal("1200"); never a float."""
    return Decimal(amount_minor).scaleb(-get_currency_precision(currency))


def format_money(amount_minor: int, currency: str, locale: str | None = None) -> str:
    """In ``locale`` (default: the active language); JPY shows no decimals, KWD three."""
    locale = translation.to_locale(locale or translation.get_language() or "en")
    amount = to_major(int(amount_minor), currency)
    try:
        return format_currency(amount, currency, locale=locale)
    except (ValueError, LookupError):
        return format_currency(amount, currency, locale="en")
