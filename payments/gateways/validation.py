"""Checks on payment details as a customer types them: card number, expiry, CVC, IBAN, US bank account.

Each check returns the value normalised or raises InvalidPaymentDetails naming the field and the
problem. No message ever repeats the number that was typed.
"""

import re

from django.utils import timezone
from django.utils.translation import gettext as _

from .base import InvalidPaymentDetails

_SEPARATORS = re.compile(r"[\s-]+")

# IBAN lengths of the countries in the SEPA schemes (European Payments Council, 2025). French
# overseas departments, Åland and the Canary Islands use their mother country's IBANs.
SEPA_IBAN_LENGTHS = {
    "AD": 24,
    "AL": 28,
    "AT": 20,
    "BE": 16,
    "BG": 22,
    "CH": 21,
    "CY": 28,
    "CZ": 24,
    "DE": 22,
    "DK": 18,
    "EE": 20,
    "ES": 24,
    "FI": 18,
    "FR": 27,
    "GB": 22,
    "GI": 23,
    "GR": 27,
    "HR": 21,
    "HU": 28,
    "IE": 22,
    "IS": 26,
    "IT": 27,
    "LI": 21,
    "LT": 20,
    "LU": 20,
    "LV": 21,
    "MC": 27,
    "MD": 24,
    "ME": 22,
    "MK": 19,
    "MT": 31,
    "NL": 18,
    "NO": 15,
    "PL": 28,
    "PT": 25,
    "RO": 24,
    "SE": 24,
    "SI": 19,
    "SK": 24,
    "SM": 27,
    "VA": 22,
}

# A card expiring further ahead than this is a typing mistake, not a card.
MAX_CARD_YEARS_AHEAD = 50


def _digits(value: object) -> str:
    return _SEPARATORS.sub("", str(value if value is not None else ""))


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def card_brand(digits: str) -> str:
    """The card network, from the number's leading digits (its IIN range)."""
    two, four = int(digits[:2]), int(digits[:4])
    if digits.startswith("4"):
        return "Visa"
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return "Mastercard"
    if two in (34, 37):
        return "American Express"
    if digits.startswith(("6011", "65")):
        return "Discover"
    if two == 35:
        return "JCB"
    return ""


def clean_card_number(number: str) -> str:
    digits = _digits(number)
    if not digits:
        raise InvalidPaymentDetails(_("Enter the card number."), field="number", code="required")
    if not digits.isascii() or not digits.isdigit():
        raise InvalidPaymentDetails(
            _("A card number has digits only (spaces and dashes are fine)."),
            field="number",
            code="invalid_number",
        )
    if not 12 <= len(digits) <= 19:
        raise InvalidPaymentDetails(
            _("A card number has 12 to 19 digits; this one has %(count)d.") % {"count": len(digits)},
            field="number",
            code="invalid_number",
        )
    if not luhn_valid(digits):
        raise InvalidPaymentDetails(
            _("This card number is not valid. Check it for a typing mistake."),
            field="number",
            code="incorrect_number",
        )
    return digits


def clean_card_expiry(*, exp_month: int | str, exp_year: int | str) -> tuple[int, int]:
    """The expiry as (month, four-digit year); a card is valid through the end of its expiry month."""
    try:
        month = int(exp_month)
    except (TypeError, ValueError):
        month = 0
    if not 1 <= month <= 12:
        raise InvalidPaymentDetails(
            _("The expiry month must be a number from 1 to 12."),
            field="exp_month",
            code="invalid_expiry_month",
        )
    try:
        year = int(exp_year)
    except (TypeError, ValueError):
        year = -1
    if 0 <= year < 100:
        year += 2000
    today = timezone.localdate()
    if not 2000 <= year <= today.year + MAX_CARD_YEARS_AHEAD:
        raise InvalidPaymentDetails(
            _("The expiry year is not valid."), field="exp_year", code="invalid_expiry_year"
        )
    if (year, month) < (today.year, today.month):
        raise InvalidPaymentDetails(
            _("This card has expired. Check the expiry date or use another card."),
            field="exp_month" if year == today.year else "exp_year",
            code="expired_card",
        )
    return month, year


def clean_cvc(cvc: str) -> str:
    value = str(cvc if cvc is not None else "").strip()
    if not (value.isascii() and value.isdigit() and 3 <= len(value) <= 4):
        raise InvalidPaymentDetails(
            _("The security code (CVC) is the 3 or 4 digits on the card."),
            field="cvc",
            code="invalid_cvc",
        )
    return value


def clean_account_holder(account_holder: str) -> str:
    value = " ".join(str(account_holder or "").split())
    if not value:
        raise InvalidPaymentDetails(
            _("Enter the account holder's name."), field="account_holder", code="required"
        )
    return value


def iban_checksum_valid(iban: str) -> bool:
    """ISO 13616: with the first four characters moved to the end and letters as 10..35, mod 97 is 1."""
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def clean_iban(iban: str) -> str:
    value = _SEPARATORS.sub("", str(iban or "")).upper()
    if not value:
        raise InvalidPaymentDetails(_("Enter the IBAN."), field="iban", code="required")
    if not re.fullmatch(r"[A-Z]{2}[0-9]{2}[A-Z0-9]+", value):
        raise InvalidPaymentDetails(
            _("An IBAN starts with a country code and two check digits, then letters and digits only."),
            field="iban",
            code="invalid_iban",
        )
    country = value[:2]
    length = SEPA_IBAN_LENGTHS.get(country)
    if length is None:
        raise InvalidPaymentDetails(
            _("Bank accounts from %(country)s cannot be debited with SEPA Direct Debit.")
            % {"country": country},
            field="iban",
            code="unsupported_country",
        )
    if len(value) != length:
        raise InvalidPaymentDetails(
            _("An IBAN from %(country)s has %(length)d characters; this one has %(count)d.")
            % {"country": country, "length": length, "count": len(value)},
            field="iban",
            code="invalid_iban",
        )
    if not iban_checksum_valid(value):
        raise InvalidPaymentDetails(
            _("This IBAN is not valid. Check it for a typing mistake."), field="iban", code="invalid_iban"
        )
    return value


def aba_checksum_valid(routing_number: str) -> bool:
    weights = (3, 7, 1) * 3
    return sum(int(digit) * weight for digit, weight in zip(routing_number, weights, strict=True)) % 10 == 0


def clean_routing_number(routing_number: str) -> str:
    value = _digits(routing_number)
    if not (value.isascii() and value.isdigit() and len(value) == 9):
        raise InvalidPaymentDetails(
            _("A routing number has 9 digits."), field="routing_number", code="invalid_routing_number"
        )
    if not aba_checksum_valid(value):
        raise InvalidPaymentDetails(
            _("This routing number is not valid. Check it for a typing mistake."),
            field="routing_number",
            code="invalid_routing_number",
        )
    return value


def clean_account_number(account_number: str) -> str:
    value = _digits(account_number)
    if not (value.isascii() and value.isdigit() and 4 <= len(value) <= 17):
        raise InvalidPaymentDetails(
            _("A US bank account number has 4 to 17 digits."),
            field="account_number",
            code="invalid_account_number",
        )
    return value
