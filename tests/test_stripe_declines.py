"""Stripe's advice code "do_not_try_again" makes a decline hard, whatever its decline code, and the
customer reads both."""

import pytest
from django.utils import translation

from payments import declines


@pytest.mark.parametrize(
    ("code", "advice", "carried", "decline_class"),
    [
        ("insufficient_funds", "", "insufficient_funds", declines.SOFT),
        ("insufficient_funds", "try_again_later", "insufficient_funds", declines.SOFT),
        ("insufficient_funds", "do_not_try_again", "insufficient_funds:do_not_try_again", declines.HARD),
        ("", "do_not_try_again", "generic_decline:do_not_try_again", declines.HARD),
        ("do_not_try_again", "do_not_try_again", "do_not_try_again", declines.HARD),
        ("lost_card", "", "lost_card", declines.HARD),
    ],
)
def test_the_advice_travels_with_the_code_and_makes_it_hard(code, advice, carried, decline_class):
    assert declines.with_advice(code, advice) == carried
    assert declines.decline_class(carried) == decline_class


def test_the_customer_reads_the_reason_and_the_advice():
    code = declines.with_advice("insufficient_funds", "do_not_try_again")
    assert declines.decline_words(code) == "insufficient funds; the bank asked not to try this method again"
    assert declines.decline_words("do_not_try_again") == "the bank asked not to try this method again"
    with translation.override("ja"):
        words = declines.decline_words(code)
    assert "insufficient" not in words and "（" in words
