"""The decline vocabulary: codes and their classes, as the card networks and Stripe name them, and
the words a customer reads for each.

A hard decline means the method will not work until the customer updates it; a soft one may
succeed at the next round. Both move the cascade on to the next method in the same run.
"""

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

HARD_DECLINE_CODES = frozenset(
    {
        "lost_card",
        "stolen_card",
        "pickup_card",
        "incorrect_number",
        "expired_card",
        "revocation_of_authorization",
        "revocation_of_all_authorizations",
        "authentication_required",
        "highest_risk_level",
        "account_closed",
        "do_not_try_again",
    }
)

HARD = "hard"
SOFT = "soft"


# Stripe's advice code for "the issuer says never to retry this method", whatever the decline code.
# It travels with the code it came with, after a colon ("insufficient_funds:do_not_try_again").
DO_NOT_TRY_AGAIN = "do_not_try_again"


def with_advice(code: str, advice_code: str) -> str:
    """A decline code carrying the processor's advice, when that advice makes it hard."""
    if advice_code == DO_NOT_TRY_AGAIN and code != DO_NOT_TRY_AGAIN:
        return f"{code or 'generic_decline'}:{DO_NOT_TRY_AGAIN}"
    return code


def decline_fixed_by_update(code: str) -> bool:
    """Whether updating the method (its expiry date) can cure this hard decline; a card reported
    lost or stolen, a closed account and the like can only be replaced."""
    base, _, advice = code.partition(":")
    return base == "expired_card" and advice != DO_NOT_TRY_AGAIN


def decline_class(code: str) -> str:
    base, _, advice = code.partition(":")
    return HARD if base in HARD_DECLINE_CODES or advice == DO_NOT_TRY_AGAIN else SOFT


DECLINE_WORDS = {
    "generic_decline": gettext_lazy("generic decline"),
    "insufficient_funds": gettext_lazy("insufficient funds"),
    "lost_card": gettext_lazy("the card was reported lost"),
    "stolen_card": gettext_lazy("the card was reported stolen"),
    "pickup_card": gettext_lazy("the bank asked to keep the card"),
    "expired_card": gettext_lazy("the card has expired"),
    "incorrect_number": gettext_lazy("incorrect card number"),
    "processing_error": gettext_lazy("a processing error at the bank"),
    "do_not_honor": gettext_lazy("the bank did not honour the charge"),
    "authentication_required": gettext_lazy("the bank asked for authentication"),
    "account_closed": gettext_lazy("the bank account is closed"),
    "revocation_of_authorization": gettext_lazy("the debit authorisation was revoked"),
    "revocation_of_all_authorizations": gettext_lazy("all debit authorisations were revoked"),
    "highest_risk_level": gettext_lazy("the bank flagged the charge as high risk"),
    "do_not_try_again": gettext_lazy("the bank asked not to try this method again"),
}


def decline_words(code: str) -> str:
    """Why a charge was declined, in plain words in the active language."""
    if not code:
        return _("declined by the bank")
    code, _colon, advice = code.partition(":")
    words = str(DECLINE_WORDS.get(code, code.replace("_", " ")))
    if advice == DO_NOT_TRY_AGAIN:
        return _("%(reason)s; %(advice)s") % {"reason": words, "advice": DECLINE_WORDS[DO_NOT_TRY_AGAIN]}
    return words
