"""How the sandbox collects methods: its customers, the (empty) browser setup, and the server-side
number path that only the sandbox has, which takes its test numbers and nothing else.

Mixed into SandboxGateway (payments.gateways.sandbox).
"""

import hashlib
import hmac
import logging
import secrets
import time

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from core.db import database_turn
from payments.gateways import validation
from payments.gateways.base import InvalidPaymentDetails, SavedMethod, SetupSession, TokenizedMethod

from .models import SandboxCustomer, SandboxToken
from .numbers import card_behaviour, iban_behaviour, us_account_behaviour
from .routers import SANDBOX_DB

logger = logging.getLogger("payments.sandbox")

Kind = SandboxToken.Kind


def network_delay() -> None:
    latency_ms = getattr(settings, "SANDBOX_LATENCY_MS", 0)
    if latency_ms > 0:
        time.sleep(latency_ms / 1000)


def _tokenized(*, kind: str, behaviour: str, secret: str, last4: str, **display) -> TokenizedMethod:
    """Keep what the token behaves like and may show, never ``secret`` (the number); its HMAC is the
    fingerprint."""
    token = f"tok_sandbox_{secrets.token_hex(12)}"
    fingerprint = hmac.new(settings.SECRET_KEY.encode(), secret.encode(), hashlib.sha256).hexdigest()[:32]
    with transaction.atomic(using=SANDBOX_DB):
        SandboxToken.objects.create(
            token=token, kind=kind, behaviour=behaviour, fingerprint=fingerprint, last4=last4, **display
        )
    logger.info("Tokenised %s ending %s as %s", kind, last4, token)
    return TokenizedMethod(kind=kind, token=token, fingerprint=fingerprint, last4=last4, **display)


def _method(row: SandboxToken) -> TokenizedMethod:
    return TokenizedMethod(
        kind=row.kind,
        token=row.token,
        fingerprint=row.fingerprint,
        last4=row.last4,
        brand=row.brand,
        exp_month=row.exp_month,
        exp_year=row.exp_year,
        bank_name=row.bank_name,
    )


def _refused(kind: str, error: InvalidPaymentDetails) -> InvalidPaymentDetails:
    logger.info("Refused %s details: %s (%s)", kind, error.code, error.field)
    return error


class SandboxCollection:
    # Customers and browser collection: the sandbox has no script for the page, so the server-side
    # form stays and its tokens are saved to the customer by finish_setup.

    def customer_create(self, *, account_id: int, name: str = "", email: str = "") -> str:
        network_delay()
        reference = f"cus_sandbox_{secrets.token_hex(12)}"
        with database_turn(), transaction.atomic(using=SANDBOX_DB):
            SandboxCustomer.objects.create(reference=reference, metadata={"account": str(account_id)})
        logger.info("Customer %s for account %s", reference, account_id)
        return reference

    def start_setup(self, *, account, kind: str, customer: str) -> SetupSession:
        return SetupSession(kind=kind)

    def finish_setup(self, *, account, kind: str, customer: str, reference: str) -> TokenizedMethod:
        network_delay()
        row = SandboxToken.objects.filter(token=reference).first()
        if row is None or row.kind != kind or row.customer not in ("", customer):
            raise InvalidPaymentDetails(
                _("This payment method cannot be saved. Enter the details again."),
                field="token",
                code="setup_failed",
            )
        if not row.customer:
            with transaction.atomic(using=SANDBOX_DB):
                SandboxToken.objects.filter(pk=row.pk, customer="").update(customer=customer)
        return _method(row)

    def saved_method(self, token: str) -> SavedMethod | None:
        network_delay()
        row = SandboxToken.objects.filter(token=token).first()
        return None if row is None else SavedMethod(method=_method(row), customer=row.customer)

    # The server-side number path, the sandbox's own: a processor's test mode on our server.

    def tokenize_card(self, *, number: str, exp_month: int, exp_year: int, cvc: str) -> TokenizedMethod:
        network_delay()
        try:
            digits = validation.clean_card_number(number)
            exp_month, exp_year = validation.clean_card_expiry(exp_month=exp_month, exp_year=exp_year)
            validation.clean_cvc(cvc)
            behaviour = card_behaviour(digits)
        except InvalidPaymentDetails as error:
            raise _refused(Kind.CARD, error) from None
        return _tokenized(
            kind=Kind.CARD,
            behaviour=behaviour,
            secret=digits,
            last4=digits[-4:],
            brand=validation.card_brand(digits),
            exp_month=exp_month,
            exp_year=exp_year,
        )

    def tokenize_sepa_debit(self, *, iban: str, account_holder: str) -> TokenizedMethod:
        network_delay()
        try:
            iban = validation.clean_iban(iban)
            validation.clean_account_holder(account_holder)
            behaviour = iban_behaviour(iban)
        except InvalidPaymentDetails as error:
            raise _refused(Kind.SEPA_DEBIT, error) from None
        return _tokenized(
            kind=Kind.SEPA_DEBIT, behaviour=behaviour, secret=iban, last4=iban[-4:], bank_name="Sandbox Bank"
        )

    def tokenize_ach_debit(
        self, *, routing_number: str, account_number: str, account_holder: str
    ) -> TokenizedMethod:
        network_delay()
        try:
            routing_number = validation.clean_routing_number(routing_number)
            account_number = validation.clean_account_number(account_number)
            validation.clean_account_holder(account_holder)
            behaviour = us_account_behaviour(account_number)
        except InvalidPaymentDetails as error:
            raise _refused(Kind.ACH_DEBIT, error) from None
        return _tokenized(
            kind=Kind.ACH_DEBIT,
            behaviour=behaviour,
            secret=f"{routing_number}:{account_number}",
            last4=account_number[-4:],
            bank_name="Sandbox Bank",
        )
