"""Checks on typed-in payment details: each refusal names the field and never repeats the number."""

import datetime

import pytest
import time_machine

from payments.gateways import validation
from payments.gateways.base import InvalidPaymentDetails

TODAY = datetime.datetime(2026, 6, 15, 12, tzinfo=datetime.UTC)


@pytest.fixture(autouse=True)
def _frozen_today():
    with time_machine.travel(TODAY, tick=False):
        yield


def refusal(check, *args, **kwargs) -> InvalidPaymentDetails:
    with pytest.raises(InvalidPaymentDetails) as caught:
        check(*args, **kwargs)
    return caught.value


@pytest.mark.parametrize(
    "number",
    ["4242424242424242", "5555555555554444", "378282246310005", "6011111111111117", "3566002020360505"],
)
def test_luhn_accepts_real_test_numbers(number):
    assert validation.luhn_valid(number)


@pytest.mark.parametrize("number", ["4242424242424241", "5555555555554440", "378282246310006"])
def test_luhn_rejects_a_wrong_check_digit(number):
    assert not validation.luhn_valid(number)


@pytest.mark.parametrize("typed", ["4242 4242 4242 4242", "4242-4242-4242-4242", " 4242424242424242 "])
def test_spaces_and_dashes_are_ignored(typed):
    assert validation.clean_card_number(typed) == "4242424242424242"


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("", "required"),
        ("4242 4242 4242 424x", "invalid_number"),
        ("４２４２４２４２４２４２４２４２", "invalid_number"),  # full-width digits
        ("42424242424", "invalid_number"),  # 11 digits
        ("42424242424242424242", "invalid_number"),  # 20 digits
        ("4242424242424241", "incorrect_number"),
    ],
)
def test_a_bad_number_is_refused_without_repeating_it(typed, code):
    error = refusal(validation.clean_card_number, typed)
    assert (error.field, error.code) == ("number", code)
    assert not typed.strip() or typed.strip() not in error.message
    assert "4242" not in error.message


def test_the_luhn_failure_says_what_is_wrong():
    error = refusal(validation.clean_card_number, "4242424242424241")
    assert "not valid" in error.message


@pytest.mark.parametrize(
    ("number", "brand"),
    [
        ("4242424242424242", "Visa"),
        ("5555555555554444", "Mastercard"),
        ("5105105105105100", "Mastercard"),
        ("2223003122003222", "Mastercard"),
        ("2720990000000007", "Mastercard"),
        ("378282246310005", "American Express"),
        ("341111111111111", "American Express"),
        ("6011111111111117", "Discover"),
        ("6500000000000002", "Discover"),
        ("3566002020360505", "JCB"),
        ("6200000000000005", ""),  # UnionPay: not a brand we name
        ("2220990000000008", ""),  # just below the Mastercard 2-series
    ],
)
def test_brand_comes_from_the_leading_digits(number, brand):
    assert validation.card_brand(number) == brand


def test_a_card_is_valid_through_the_end_of_its_expiry_month():
    assert validation.clean_card_expiry(exp_month=6, exp_year=2026) == (6, 2026)
    with time_machine.travel(datetime.datetime(2026, 6, 30, 23, 59, tzinfo=datetime.UTC), tick=False):
        assert validation.clean_card_expiry(exp_month=6, exp_year=2026) == (6, 2026)


def test_two_digit_years_and_strings_are_understood():
    assert validation.clean_card_expiry(exp_month="12", exp_year="29") == (12, 2029)


def test_an_earlier_month_this_year_blames_the_month():
    error = refusal(validation.clean_card_expiry, exp_month=5, exp_year=2026)
    assert (error.field, error.code) == ("exp_month", "expired_card")
    assert "expired" in error.message


def test_an_earlier_year_blames_the_year():
    error = refusal(validation.clean_card_expiry, exp_month=12, exp_year=2025)
    assert (error.field, error.code) == ("exp_year", "expired_card")


@pytest.mark.parametrize("month", [0, 13, -1, "", None, "May"])
def test_the_month_must_be_1_to_12(month):
    error = refusal(validation.clean_card_expiry, exp_month=month, exp_year=2030)
    assert (error.field, error.code) == ("exp_month", "invalid_expiry_month")


@pytest.mark.parametrize("year", [1999, 2077, "next", None])
def test_an_implausible_year_is_refused(year):
    error = refusal(validation.clean_card_expiry, exp_month=1, exp_year=year)
    assert (error.field, error.code) == ("exp_year", "invalid_expiry_year")


@pytest.mark.parametrize("cvc", ["123", "1234", " 123 "])
def test_a_cvc_has_3_or_4_digits(cvc):
    assert validation.clean_cvc(cvc) == cvc.strip()


@pytest.mark.parametrize("cvc", ["", "12", "12345", "12a", None])
def test_a_bad_cvc_is_refused(cvc):
    error = refusal(validation.clean_cvc, cvc)
    assert (error.field, error.code) == ("cvc", "invalid_cvc")


@pytest.mark.parametrize(
    "typed",
    ["DE89370400440532013000", "de89 3704 0044 0532 0130 00", "GB82WEST12345698765432", "NO9386011117947"],
)
def test_a_valid_iban_is_normalised(typed):
    assert validation.clean_iban(typed) == typed.replace(" ", "").upper()


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("", "required"),
        ("DE88370400440532013000", "invalid_iban"),  # check digits do not match
        ("DE8937040044053201300", "invalid_iban"),  # 21 characters, Germany has 22
        ("DE89/3704/0044/0532/0130/00", "invalid_iban"),
        ("SA0380000000608010167519", "unsupported_country"),  # a valid IBAN, outside SEPA
    ],
)
def test_a_bad_iban_is_refused_without_repeating_it(typed, code):
    error = refusal(validation.clean_iban, typed)
    assert (error.field, error.code) == ("iban", code)
    assert not typed or typed not in error.message
    assert "0532013000" not in error.message


def test_the_iban_length_message_names_the_country_and_length():
    error = refusal(validation.clean_iban, "DE8937040044053201300")
    assert "DE" in error.message and "22" in error.message


def test_the_iban_checksum_is_mod_97():
    assert validation.iban_checksum_valid("DE89370400440532013000")
    assert not validation.iban_checksum_valid("DE89370400440532013001")


@pytest.mark.parametrize("routing", ["110000000", "011000015", "021000021", "121-000-358"])
def test_a_valid_routing_number(routing):
    assert validation.clean_routing_number(routing) == routing.replace("-", "")


@pytest.mark.parametrize("routing", ["110000001", "11000000", "1100000000", "11000000a", ""])
def test_a_bad_routing_number_is_refused(routing):
    error = refusal(validation.clean_routing_number, routing)
    assert (error.field, error.code) == ("routing_number", "invalid_routing_number")


@pytest.mark.parametrize("account", ["1234", "000123456789", "12345678901234567"])
def test_a_us_account_number_has_4_to_17_digits(account):
    assert validation.clean_account_number(account) == account


@pytest.mark.parametrize("account", ["123", "123456789012345678", "0001234x6789", ""])
def test_a_bad_us_account_number_is_refused_without_repeating_it(account):
    error = refusal(validation.clean_account_number, account)
    assert (error.field, error.code) == ("account_number", "invalid_account_number")
    assert not account or account not in error.message


@pytest.mark.parametrize("holder", ["", "   ", None])
def test_an_account_holder_is_required(holder):
    error = refusal(validation.clean_account_holder, holder)
    assert (error.field, error.code) == ("account_holder", "required")
