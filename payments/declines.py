"""Decline codes and their classes, as the card networks and Stripe name them.

A hard decline means the method will not work until the customer updates it; a soft one may
succeed at the next round. Both move the cascade on to the next method in the same run.
"""

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
    }
)

HARD = "hard"
SOFT = "soft"


def decline_class(code: str) -> str:
    return HARD if code in HARD_DECLINE_CODES else SOFT
