"""Payment details taken on the server: the sandbox's test numbers, tokenised here and kept as a
method collected in the browser is. The number goes no further than the gateway's tokeniser; a
processor that collects in the browser only refuses (``GatewayError``)."""

from accounts.models import Account

from ..gateways import get_gateway
from ..gateways.base import GatewayError, TokenizedMethod
from ..models import PaymentMethod
from ..sandbox.collection import SandboxCollection
from .methods import payment_method_setup_finish


def _number_taking_gateway() -> SandboxCollection:
    """The configured gateway, if it takes numbers on the server (only the sandbox does)."""
    gateway = get_gateway()
    if not isinstance(gateway, SandboxCollection):
        raise GatewayError(f"The {gateway.name} gateway collects payment details in the browser only.")
    return gateway


def payment_method_keep(
    *, account: Account, actor, collected: TokenizedMethod, add_to_order=True, replaces=None, request=None
) -> PaymentMethod:
    """Keep a method tokenised on the server, saved to the account's customer as a method collected
    in the browser is (``payment_method_setup_finish``)."""
    return payment_method_setup_finish(
        account=account,
        actor=actor,
        kind=collected.kind,
        reference=collected.token,
        add_to_order=add_to_order,
        replaces=replaces,
        request=request,
    )


def payment_method_tokenize_card(*, number: str, exp_month: int, exp_year: int, cvc: str) -> TokenizedMethod:
    """Tokenise a card on the server (the sandbox's test cards only; raises InvalidPaymentDetails).
    The number goes no further."""
    gateway = _number_taking_gateway()
    return gateway.tokenize_card(number=number, exp_month=exp_month, exp_year=exp_year, cvc=cvc)


def payment_method_tokenize_sepa_debit(*, iban: str, account_holder: str) -> TokenizedMethod:
    return _number_taking_gateway().tokenize_sepa_debit(iban=iban, account_holder=account_holder)


def payment_method_tokenize_ach_debit(
    *, routing_number: str, account_number: str, account_holder: str
) -> TokenizedMethod:
    return _number_taking_gateway().tokenize_ach_debit(
        routing_number=routing_number, account_number=account_number, account_holder=account_holder
    )


def payment_method_add_card(
    *,
    account: Account,
    actor,
    number: str,
    exp_month: int,
    exp_year: int,
    cvc: str,
    add_to_order=True,
    request=None,
) -> PaymentMethod:
    """Tokenise a card on the server and keep it (the API's one-step add)."""
    collected = payment_method_tokenize_card(number=number, exp_month=exp_month, exp_year=exp_year, cvc=cvc)
    return payment_method_keep(
        account=account, actor=actor, collected=collected, add_to_order=add_to_order, request=request
    )


def payment_method_add_sepa_debit(
    *, account: Account, actor, iban: str, account_holder: str, add_to_order=True, request=None
) -> PaymentMethod:
    collected = payment_method_tokenize_sepa_debit(iban=iban, account_holder=account_holder)
    return payment_method_keep(
        account=account, actor=actor, collected=collected, add_to_order=add_to_order, request=request
    )


def payment_method_add_ach_debit(
    *,
    account: Account,
    actor,
    routing_number: str,
    account_number: str,
    account_holder: str,
    add_to_order=True,
    request=None,
) -> PaymentMethod:
    collected = payment_method_tokenize_ach_debit(
        routing_number=routing_number, account_number=account_number, account_holder=account_holder
    )
    return payment_method_keep(
        account=account, actor=actor, collected=collected, add_to_order=add_to_order, request=request
    )
