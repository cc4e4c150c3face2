"""The sandbox's test numbers and what a charge on each does (docs/sandbox.md lists them all).

Like a processor's test mode, the sandbox takes nothing else: any other card number, IBAN or US bank
account number is refused when typed in, so a real one entered into a development console goes no
further. No message repeats the number.
"""

import dataclasses
import datetime

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from payments.gateways.base import InvalidPaymentDetails


@dataclasses.dataclass(frozen=True)
class Behaviour:
    """How a charge ends: an empty decline code means it succeeds."""

    decline_code: str = ""
    # Bank debits only: how much longer than SANDBOX_CLEARING_SECONDS the debit stays pending.
    extra_clearing: datetime.timedelta = datetime.timedelta(0)


# Faults. The first two strike only the first call for an idempotency key, before any charge.
REPLY_LOST = "reply_lost"
TIMEOUT_BEFORE_CHARGE = "timeout_before_charge"
BAD_GATEWAY_ONCE = "bad_gateway_once"
SLOW_REPLY = "slow_reply"
ONCE_PER_KEY = frozenset({TIMEOUT_BEFORE_CHARGE, BAD_GATEWAY_ONCE})

BEHAVIOURS = {
    "succeeds": Behaviour(),
    "generic_decline": Behaviour("generic_decline"),
    "insufficient_funds": Behaviour("insufficient_funds"),
    "lost_card": Behaviour("lost_card"),
    "stolen_card": Behaviour("stolen_card"),
    "expired_card": Behaviour("expired_card"),
    "processing_error": Behaviour("processing_error"),
    "attached_then_declined": Behaviour("generic_decline"),
    REPLY_LOST: Behaviour(),
    TIMEOUT_BEFORE_CHARGE: Behaviour(),
    BAD_GATEWAY_ONCE: Behaviour(),
    SLOW_REPLY: Behaviour(),
    "debit_succeeds": Behaviour(),
    "debit_insufficient_funds": Behaviour("insufficient_funds"),
    "debit_account_closed": Behaviour("account_closed"),
    # Like Stripe's "fails after three minutes" accounts: long enough to watch a debit sit pending.
    "debit_fails_late": Behaviour("insufficient_funds", extra_clearing=datetime.timedelta(minutes=3)),
}

TEST_CARDS = {
    "4242424242424242": "succeeds",
    "5555555555554444": "succeeds",
    "4000000000000002": "generic_decline",
    "4000000000009995": "insufficient_funds",
    "4000000000009987": "lost_card",
    "4000000000009979": "stolen_card",
    "4000000000000069": "expired_card",
    "4000000000000119": "processing_error",
    "4000000000000341": "attached_then_declined",
    "4000000000008013": REPLY_LOST,
    "4000000000008021": TIMEOUT_BEFORE_CHARGE,
    "4000000000008039": BAD_GATEWAY_ONCE,
    "4000000000008047": SLOW_REPLY,
}
TEST_IBANS = {
    "DE89370400440532013000": "debit_succeeds",
    "DE62370400440532013001": "debit_insufficient_funds",
    "DE35370400440532013002": "debit_account_closed",
    "DE08370400440532013003": "debit_fails_late",
}
# With routing number 110000000, or any other valid one (routing numbers name banks, not customers).
TEST_US_ACCOUNTS = {
    "000123456789": "debit_succeeds",
    "000111111116": "debit_insufficient_funds",
    "000111111113": "debit_account_closed",
    "000444444440": "debit_fails_late",
}

DECLINE_MESSAGES = {
    "generic_decline": gettext_lazy("The payment was declined."),
    "insufficient_funds": gettext_lazy("The account has insufficient funds."),
    "lost_card": gettext_lazy("The card has been reported lost."),
    "stolen_card": gettext_lazy("The card has been reported stolen."),
    "expired_card": gettext_lazy("The card has expired."),
    "processing_error": gettext_lazy("An error occurred while processing the payment."),
    "account_closed": gettext_lazy("The bank account has been closed."),
    "incorrect_number": gettext_lazy("The gateway does not know this payment method."),
    "currency_not_supported": gettext_lazy("This payment method cannot pay in this currency."),
}

NOT_A_TEST_NUMBER = "not_a_test_number"


def card_behaviour(digits: str) -> str:
    """The behaviour of a valid card number; any number but a test card is refused."""
    behaviour = TEST_CARDS.get(digits)
    if behaviour is None:
        raise InvalidPaymentDetails(
            _(
                "This card number is not a test card: the sandbox accepts only its test numbers "
                "(docs/sandbox.md lists them), so a real card is never sent anywhere."
            ),
            field="number",
            code=NOT_A_TEST_NUMBER,
        )
    return behaviour


def iban_behaviour(iban: str) -> str:
    behaviour = TEST_IBANS.get(iban)
    if behaviour is None:
        raise InvalidPaymentDetails(
            _(
                "This IBAN is not a test account: the sandbox accepts only its test IBANs "
                "(docs/sandbox.md lists them), so a real account is never sent anywhere."
            ),
            field="iban",
            code=NOT_A_TEST_NUMBER,
        )
    return behaviour


def us_account_behaviour(account_number: str) -> str:
    behaviour = TEST_US_ACCOUNTS.get(account_number)
    if behaviour is None:
        raise InvalidPaymentDetails(
            _(
                "This account number is not a test account: the sandbox accepts only its test "
                "account numbers (docs/sandbox.md lists them), so a real account is never sent anywhere."
            ),
            field="account_number",
            code=NOT_A_TEST_NUMBER,
        )
    return behaviour
