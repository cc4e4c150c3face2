"""The Stripe gateway: customers, methods saved in the browser with a SetupIntent, one PaymentIntent
per attempt, lookups by reference or by the attempt key in the metadata, paged charge lists and refunds.

Card numbers and IBANs never reach our server: the browser hands them to Stripe.js, and we keep only
what ``finish_setup`` reads back (brand, last 4, expiry, fingerprint). What each Stripe answer means is
in one table, ``outcomes.OUTCOMES``.
"""

import datetime
import logging
from collections.abc import Mapping

import stripe
from django.utils.translation import gettext as _

from payments.gateways.base import (
    ChargePage,
    ChargeResult,
    Gateway,
    GatewayError,
    GatewayEvent,
    GatewayUnavailable,
    InvalidPaymentDetails,
    LedgerEntry,
    OnReference,
    RefundResult,
    SavedMethod,
    SetupSession,
    TokenizedMethod,
)

from . import events, outcomes
from .client import stripe_client, stripe_settings

logger = logging.getLogger("payments.stripe")

KINDS = ("card", "sepa_debit")
# Stripe pages lists by at most this many.
STRIPE_PAGE_LIMIT = 100
# How far before the attempt was recorded a charge for it may have been made (clocks differ).
CLOCK_SLACK = datetime.timedelta(minutes=5)


def _call(what: str, request):
    """Run one request; an error whose outcome is unknown becomes GatewayUnavailable, any other
    a GatewayError (never the library's own exceptions)."""
    try:
        return request()
    except stripe.StripeError as error:
        row = outcomes.error_row(error)
        if outcomes.OUTCOMES[row] is outcomes.UNKNOWN:
            raise GatewayUnavailable(f"Stripe {what}: {row}: {error.user_message or error}") from None
        raise GatewayError(f"Stripe {what}: {error.user_message or error}") from None


def _timestamp(moment: datetime.datetime) -> int:
    return int(moment.timestamp())


def _payment_method_types(currency: str) -> list[str]:
    # SEPA Direct Debit is for euros only; Stripe refuses the type for another currency.
    return ["card", "sepa_debit"] if currency.lower() == "eur" else ["card"]


def _tokenized(method) -> TokenizedMethod:
    method = outcomes.plain(method)
    kind = method["type"]
    details = method.get(kind) or {}
    if kind == "card":
        return TokenizedMethod(
            kind="card",
            token=method["id"],
            fingerprint=details.get("fingerprint") or "",
            last4=details.get("last4") or "",
            brand=(details.get("brand") or "").replace("_", " ").title(),
            exp_month=details.get("exp_month"),
            exp_year=details.get("exp_year"),
        )
    return TokenizedMethod(
        kind="sepa_debit",
        token=method["id"],
        fingerprint=details.get("fingerprint") or "",
        last4=details.get("last4") or "",
        bank_name=details.get("bank_code") or details.get("country") or "",
    )


def _ledger_entry(intent) -> LedgerEntry | None:
    intent = outcomes.plain(intent)
    try:
        result = outcomes.from_payment_intent(intent)
    except GatewayUnavailable:
        return None  # not confirmed (yet): no charge to reconcile
    metadata = dict(intent.get("metadata") or {})
    return LedgerEntry(
        reference=result.reference,
        idempotency_key="",  # Stripe does not report it; the attempt key is in the metadata
        token=intent.get("payment_method") or "",
        amount_minor=result.amount_minor,
        currency=result.currency,
        status=result.status,
        decline_code=result.decline_code,
        created_at=datetime.datetime.fromtimestamp(int(intent["created"]), tz=datetime.UTC),
        customer=intent.get("customer") or "",
        metadata={str(k): str(v) for k, v in metadata.items()},
    )


def _refund_result(refund, *, charge_reference: str) -> RefundResult:
    refund = outcomes.plain(refund)
    return RefundResult(
        reference=refund["id"],
        charge_reference=charge_reference,
        amount_minor=int(refund["amount"]),
        currency=str(refund["currency"]).upper(),
        # pending and requires_action still become a refund; failed and canceled never do.
        succeeded=refund.get("status") not in ("failed", "canceled"),
        idempotency_key=str((refund.get("metadata") or {}).get("refund") or ""),
    )


class StripeGateway(Gateway):
    name = "stripe"

    @staticmethod
    def configuration_errors() -> list[str]:
        from .client import settings_errors

        return settings_errors()

    # Customers and methods.

    def customer_create(self, *, account_id: int, name: str = "", email: str = "") -> str:
        params = {"metadata": {"account": str(account_id)}}
        if name:
            params["name"] = name
        if email:
            params["email"] = email
        # No idempotency key: a customer made by a call whose reply was lost is left unused.
        customer = _call("customer", lambda: stripe_client().v1.customers.create(params=params))
        logger.info("Stripe customer %s for account %s", customer.id, account_id)
        return customer.id

    def start_setup(self, *, account, kind: str, customer: str) -> SetupSession:
        if kind not in KINDS:
            raise GatewayError(f"Stripe saves {' and '.join(KINDS)} methods, not {kind!r}.")
        intent = _call(
            "setup",
            lambda: stripe_client().v1.setup_intents.create(
                params={
                    "customer": customer,
                    "usage": "off_session",
                    "payment_method_types": [kind],
                    "metadata": {"account": str(account.pk)},
                }
            ),
        )
        return SetupSession(
            kind=kind,
            client_secret=intent.client_secret,
            publishable_key=stripe_settings().publishable_key,
            reference=intent.id,
        )

    def finish_setup(self, *, account, kind: str, customer: str, reference: str) -> TokenizedMethod:
        client = stripe_client()
        refused = InvalidPaymentDetails(
            _("This payment method cannot be saved. Enter the details again."),
            field="token",
            code="setup_failed",
        )
        if reference.startswith("seti_"):
            try:
                intent = client.v1.setup_intents.retrieve(reference)
            except stripe.InvalidRequestError:
                raise refused from None  # no such SetupIntent, as for a PaymentMethod below
            except stripe.StripeError as error:
                raise GatewayUnavailable(f"Stripe setup: {error.user_message or error}") from None
            if intent.status != "succeeded" or intent.customer != customer or not intent.payment_method:
                raise refused
            reference = intent.payment_method
        if not reference.startswith("pm_"):
            raise refused
        try:
            method = client.v1.payment_methods.retrieve(reference)
        except stripe.InvalidRequestError:
            raise refused from None
        except stripe.StripeError as error:
            raise GatewayUnavailable(f"Stripe payment method: {error.user_message or error}") from None
        if method.type != kind or (method.customer or "") not in ("", customer):
            raise refused
        if not method.customer:
            _call(
                "attach", lambda: client.v1.payment_methods.attach(reference, params={"customer": customer})
            )
        return _tokenized(method)

    # Webhooks.

    def parse_event(self, body: bytes, headers: Mapping[str, str]) -> GatewayEvent:
        """A webhook delivery, its signature checked (WebhookSignatureError if it is not Stripe's)."""
        return events.parse_event(body, headers)

    # Charges.

    def charge(
        self,
        *,
        customer: str,
        method_token: str,
        amount_minor: int,
        currency: str,
        idempotency_key: str,
        metadata: Mapping[str, str],
        timeout: float,
        on_reference: OnReference | None = None,
    ) -> ChargeResult:
        params = {
            "amount": amount_minor,
            "currency": currency.lower(),
            "customer": customer,
            "payment_method": method_token,
            "payment_method_types": _payment_method_types(currency),
            "confirm": True,
            "off_session": True,
            "metadata": {str(k): str(v) for k, v in metadata.items()},
        }
        try:
            intent = stripe_client(timeout=timeout).v1.payment_intents.create(
                params=params, options={"idempotency_key": idempotency_key}
            )
        except stripe.StripeError as error:
            try:
                result = outcomes.from_error(
                    error,
                    idempotency_key=idempotency_key,
                    amount_minor=amount_minor,
                    currency=currency.upper(),
                )
            except GatewayUnavailable:
                logger.warning("Charge %s: outcome unknown (%s)", idempotency_key, error.http_status)
                raise
        else:
            result = outcomes.from_payment_intent(intent, idempotency_key=idempotency_key)
        if on_reference is not None and result.reference:
            on_reference(result.reference)
        logger.info(
            "Charge %s for %s %s: %s %s",
            result.reference,
            result.amount_minor,
            result.currency,
            result.status,
            result.decline_code,
        )
        return result

    def retrieve(self, reference: str) -> ChargeResult | None:
        if not reference:
            raise GatewayError("Retrieve a charge by its reference.")
        try:
            intent = stripe_client().v1.payment_intents.retrieve(reference)
        except stripe.InvalidRequestError as error:
            if error.http_status == 404:
                return None
            raise GatewayError(f"Stripe retrieve: {error.user_message or error}") from None
        except stripe.StripeError as error:
            raise GatewayUnavailable(f"Stripe retrieve: {error.user_message or error}") from None
        return outcomes.from_payment_intent(intent)

    def find(
        self, idempotency_key: str, *, customer: str = "", since: datetime.datetime | None = None
    ) -> ChargeResult | None:
        """By listing the customer's PaymentIntents since the attempt and matching the attempt key in
        their metadata: a list is consistent at once, Stripe's search is not."""
        if not idempotency_key:
            raise GatewayError("Find a charge by its idempotency key.")
        params: dict = {"limit": STRIPE_PAGE_LIMIT}
        if customer:
            params["customer"] = customer
        if since is not None:
            params["created"] = {"gte": _timestamp(since - CLOCK_SLACK)}
        for intent in self._intents(params):
            if (outcomes.plain(intent).get("metadata") or {}).get("attempt") == idempotency_key:
                return outcomes.from_payment_intent(intent, idempotency_key=idempotency_key)
        return None

    def _intents(self, params: dict):
        client = stripe_client()
        while True:
            page = _call("list", lambda: client.v1.payment_intents.list(params=dict(params)))
            yield from page.data
            if not page.has_more or not page.data:
                return
            params["starting_after"] = page.data[-1].id

    def list_charges(
        self, *, since: datetime.datetime | None = None, cursor: str = "", limit: int = 100
    ) -> ChargePage:
        """Stripe lists newest first: the pages run from now back to ``since``, and ``next_cursor`` is
        the last PaymentIntent of a page (Stripe's ``starting_after``). PaymentIntents not confirmed
        yet are left out."""
        if limit < 1:
            raise GatewayError("limit must be at least 1.")
        params: dict = {"limit": min(limit, STRIPE_PAGE_LIMIT)}
        if since is not None:
            params["created"] = {"gte": _timestamp(since)}
        if cursor:
            params["starting_after"] = cursor
        page = _call("list", lambda: stripe_client().v1.payment_intents.list(params=params))
        entries = [entry for entry in map(_ledger_entry, page.data) if entry is not None]
        next_cursor = page.data[-1].id if page.has_more and page.data else ""
        return ChargePage(entries=entries, next_cursor=next_cursor)

    def refund(
        self, *, reference: str, idempotency_key: str, amount_minor: int | None = None
    ) -> RefundResult:
        # The key goes in the metadata too: Stripe keeps an idempotency key for 24 hours only, and
        # a refund whose answer was lost is found later among the charge's refunds by it.
        params: dict = {"payment_intent": reference, "metadata": {"refund": idempotency_key}}
        if amount_minor is not None:
            params["amount"] = amount_minor
        refund = _call(
            "refund",
            lambda: stripe_client().v1.refunds.create(
                params=params, options={"idempotency_key": idempotency_key}
            ),
        )
        return _refund_result(refund, charge_reference=reference)

    def refunds(self, reference: str) -> list[RefundResult]:
        client = stripe_client()
        params: dict = {"payment_intent": reference, "limit": STRIPE_PAGE_LIMIT}
        found = []
        while True:
            page = _call("refunds", lambda: client.v1.refunds.list(params=dict(params)))
            found.extend(_refund_result(refund, charge_reference=reference) for refund in page.data)
            if not page.has_more or not page.data:
                return found
            params["starting_after"] = page.data[-1].id

    def cancel(self, reference: str) -> ChargeResult | None:
        """Cancel a PaymentIntent that waits for the customer. One that can no longer be cancelled
        (it succeeded, or is processing) is reported as it is now."""
        client = stripe_client()
        try:
            intent = client.v1.payment_intents.cancel(reference)
        except stripe.InvalidRequestError as error:
            if error.http_status == 404:
                return None
            # Not cancellable in its state: what matters is the state it is in.
            return self.retrieve(reference)
        except stripe.StripeError as error:
            raise GatewayUnavailable(f"Stripe cancel: {error.user_message or error}") from None
        logger.info("PaymentIntent %s cancelled", reference)
        return outcomes.from_payment_intent(intent)

    def saved_method(self, token: str) -> SavedMethod | None:
        try:
            method = stripe_client().v1.payment_methods.retrieve(token)
        except stripe.InvalidRequestError as error:
            if error.http_status == 404:
                return None
            raise GatewayError(f"Stripe payment method: {error.user_message or error}") from None
        except stripe.StripeError as error:
            raise GatewayUnavailable(f"Stripe payment method: {error.user_message or error}") from None
        customer = method.customer
        if not isinstance(customer, str):
            customer = getattr(customer, "id", "") or ""
        return SavedMethod(method=_tokenized(method), customer=customer)
