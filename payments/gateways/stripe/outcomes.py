"""What Stripe's answers mean for us: the one table from Stripe outcomes to ``ChargeStatus``.

Every answer about a charge is a PaymentIntent (``status``) or an error the library raises; both are
named by a row of ``OUTCOMES``. A row whose value is ``UNKNOWN`` raises GatewayUnavailable: the charge
may or may not have happened, and nothing else is charged until it is resolved by ``retrieve`` or
``find`` (or by repeating the call with the same idempotency key).
"""

import stripe

from payments import declines
from payments.gateways.base import ChargeResult, ChargeStatus, GatewayError, GatewayUnavailable

UNKNOWN = None

OUTCOMES: dict[str, ChargeStatus | None] = {
    # PaymentIntent statuses.
    "succeeded": ChargeStatus.SUCCEEDED,
    "processing": ChargeStatus.PENDING,  # a SEPA debit takes days: the webhook or a lookup says
    "requires_action": ChargeStatus.REQUIRES_ACTION,  # 3-D Secure: the customer, on-session
    "requires_payment_method": ChargeStatus.FAILED,  # the last try was declined
    "canceled": ChargeStatus.FAILED,  # never charged
    # We confirm at once and capture automatically: these mean a step we did not take.
    "requires_confirmation": UNKNOWN,
    "requires_capture": UNKNOWN,
    # Errors the library raises.
    "card_error": ChargeStatus.FAILED,  # a decline, with Stripe's decline_code
    "authentication_required": ChargeStatus.REQUIRES_ACTION,  # a card error asking for 3-D Secure
    "invalid_request_error": ChargeStatus.FAILED,  # refused before any charge (a detached method …)
    "idempotency_error": UNKNOWN,  # the key is in use by a call still running, or was used otherwise
    "rate_limit_error": UNKNOWN,  # 429
    "api_error": UNKNOWN,  # 5xx
    "api_connection_error": UNKNOWN,  # timeouts and connection errors
}

AUTHENTICATION_REQUIRED = "authentication_required"


def error_row(error: stripe.StripeError) -> str:
    """The row of OUTCOMES an error of the library falls in; GatewayError for one that is not about
    the charge (a wrong key, missing permissions): nothing was charged and retrying will not help."""
    if isinstance(error, stripe.CardError):
        codes = {error.code, _get(plain(error.error), "decline_code")}
        return AUTHENTICATION_REQUIRED if AUTHENTICATION_REQUIRED in codes else "card_error"
    if isinstance(error, stripe.IdempotencyError) or error.http_status == 409:
        # The library raises a 409 (a call with the key still running) as an APIError.
        return "idempotency_error"
    if isinstance(error, stripe.RateLimitError):
        return "rate_limit_error"
    if isinstance(error, stripe.APIConnectionError):
        return "api_connection_error"
    if isinstance(error, stripe.InvalidRequestError):
        if error.http_status == 429:
            return "rate_limit_error"
        return "invalid_request_error"
    if isinstance(error, stripe.APIError) or (error.http_status or 0) >= 500:
        return "api_error"
    if (error.http_status or 0) == 429:
        return "rate_limit_error"
    raise GatewayError(f"Stripe refused the request: {error.user_message or error}")


def _decline_code(details: dict | None) -> str:
    """Stripe's decline code (or error code), with its advice when the issuer says never to retry."""
    if not details:
        return ""
    code = _get(details, "decline_code") or _get(details, "code") or ""
    return declines.with_advice(code, _get(details, "advice_code", ""))


def plain(obj) -> dict:
    """A Stripe object as the plain dict of its JSON (nested objects too); a dict as it is."""
    if obj is None:
        return {}
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def _get(obj: dict, name: str, default=None):
    value = obj.get(name) if isinstance(obj, dict) else None
    return default if value is None else value


def _status(row: str, *, detail: str) -> ChargeStatus:
    status = OUTCOMES[row]
    if status is UNKNOWN:
        raise GatewayUnavailable(detail)
    return status


def from_payment_intent(intent, *, idempotency_key: str = "") -> ChargeResult:
    """The ChargeResult a PaymentIntent stands for; GatewayUnavailable if it is in a state we never
    leave one in."""
    intent = plain(intent)
    row = _get(intent, "status", "")
    if row not in OUTCOMES or row.endswith("_error"):
        raise GatewayUnavailable(f"PaymentIntent {_get(intent, 'id', '?')} is {row!r}.")
    last_error = _get(intent, "last_payment_error")
    if row == "requires_payment_method":
        if last_error is None:
            raise GatewayUnavailable(f"PaymentIntent {_get(intent, 'id', '?')} was never confirmed.")
        if AUTHENTICATION_REQUIRED in {_get(last_error, "code"), _get(last_error, "decline_code")}:
            row = AUTHENTICATION_REQUIRED
    status = _status(row, detail=f"PaymentIntent {_get(intent, 'id', '?')} is {row!r}.")
    decline_code = message = ""
    if status == ChargeStatus.FAILED:
        if row == "canceled":
            decline_code = "canceled"
            message = f"Canceled: {_get(intent, 'cancellation_reason', '') or 'no reason given'}"
        else:
            decline_code = _decline_code(last_error)
            message = _get(last_error, "message", "")
    elif status == ChargeStatus.REQUIRES_ACTION:
        message = _get(last_error, "message", "") if last_error is not None else ""
    metadata = _get(intent, "metadata", {}) or {}
    return ChargeResult(
        status=status,
        reference=_get(intent, "id", ""),
        idempotency_key=idempotency_key or _get(metadata, "attempt", ""),
        amount_minor=int(_get(intent, "amount", 0)),
        currency=str(_get(intent, "currency", "")).upper(),
        decline_code=decline_code[:64],
        message=str(message)[:300],
        action_secret=_get(intent, "client_secret", "") if status == ChargeStatus.REQUIRES_ACTION else "",
    )


def from_error(
    error: stripe.StripeError, *, idempotency_key: str, amount_minor: int, currency: str
) -> ChargeResult:
    """The ChargeResult an error of the library stands for; GatewayUnavailable for the rows whose
    outcome is unknown, GatewayError for a request Stripe refused for reasons not about the charge."""
    row = error_row(error)
    status = _status(row, detail=f"Stripe: {row} ({error.http_status or 'no reply'}): {error.user_message}")
    details = plain(error.error)
    intent = _get(details, "payment_intent", {})
    if intent and row == AUTHENTICATION_REQUIRED:
        return from_payment_intent({**intent, "status": "requires_action"}, idempotency_key=idempotency_key)
    return ChargeResult(
        status=status,
        reference=_get(intent, "id", ""),
        idempotency_key=idempotency_key,
        amount_minor=amount_minor,
        currency=currency,
        decline_code=_decline_code(details)[:64] if status == ChargeStatus.FAILED else "",
        message=str(error.user_message or "")[:300],
    )
