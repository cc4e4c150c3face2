"""The sandbox's webhooks: signed events that announce how a bank debit ended, as a processor sends them.

Signing works like Stripe's: the ``Sandbox-Signature`` header is ``t=<unix time>,v1=<hex>``, the HMAC-SHA256
of ``"<t>." + body`` keyed with ``SANDBOX_WEBHOOK_SECRET``. A receiver accepts any ``v1`` that matches
(so a secret can be rotated) and refuses a timestamp more than five minutes away from its clock, so a
captured request cannot be replayed later.

A debit that has cleared or failed is announced once its event is answered with a 2xx; until then
every delivery run posts it again, with the same event id, so the receiver stores it once however often
it arrives. ``events_deliver`` is what ``manage.py sandbox_deliver_events`` runs on a schedule.

An event names the charge, its idempotency key and its outcome: never the token or any number.
"""

import dataclasses
import datetime
import hashlib
import hmac
import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping

from django.conf import settings
from django.utils import timezone

from payments.gateways import get_gateway
from payments.gateways.base import GatewayEvent, WebhookSignatureError

from .models import SandboxCharge

logger = logging.getLogger("payments.sandbox")

SIGNATURE_HEADER = "Sandbox-Signature"
TOLERANCE = datetime.timedelta(minutes=5)
SCHEME = "v1"
Status = SandboxCharge.Status

# POSTs ``body`` with ``headers`` to a URL and returns the HTTP status; raises when no answer came.
Transport = Callable[[str, bytes, Mapping[str, str]], int]


# Signing ------------------------------------------------------------------------------------------


def _digest(body: bytes, *, secret: str, timestamp: int) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(body: bytes, *, secret: str, timestamp: int) -> str:
    return f"t={timestamp},{SCHEME}={_digest(body, secret=secret, timestamp=timestamp)}"


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name.lower()), "")
    return value or ""


def signature_verify(body: bytes, header: str, *, secret: str, now: datetime.datetime | None = None) -> None:
    """Raise WebhookSignatureError unless ``header`` signs ``body`` with ``secret`` within the tolerance."""
    if not secret:
        raise WebhookSignatureError("No webhook secret is configured: every event is refused.")
    timestamp, signatures = None, []
    for part in header.split(","):
        key, _sep, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == SCHEME and value:
            signatures.append(value)
    if timestamp is None or not signatures:
        raise WebhookSignatureError(
            f"No {SIGNATURE_HEADER} header with a timestamp and a {SCHEME} signature."
        )
    expected = _digest(body, secret=secret, timestamp=timestamp)
    if not any(hmac.compare_digest(expected, signature) for signature in signatures):
        raise WebhookSignatureError("The signature does not match the body.")
    age = (now or timezone.now()).timestamp() - timestamp
    if abs(age) > TOLERANCE.total_seconds():
        raise WebhookSignatureError(
            f"The signature's timestamp is {abs(age):.0f} s away from now, more than the "
            f"{TOLERANCE.total_seconds():.0f} s tolerated."
        )


def event_parse(body: bytes, headers: Mapping[str, str]) -> GatewayEvent:
    """The verified event in ``body``; WebhookSignatureError if it is not genuine, fresh and readable."""
    signature_verify(body, _header(headers, SIGNATURE_HEADER), secret=settings.SANDBOX_WEBHOOK_SECRET)
    try:
        payload = json.loads(body)
        charge = payload["data"]["object"]
        return GatewayEvent(
            id=str(payload["id"]),
            type=str(payload["type"]),
            created=datetime.datetime.fromtimestamp(int(payload["created"]), tz=datetime.UTC),
            reference=str(charge["id"]),
            idempotency_key=str(charge.get("idempotency_key") or ""),
            status=str(charge.get("status") or ""),
            decline_code=str(charge.get("decline_code") or ""),
            payload=payload,
        )
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise WebhookSignatureError(
            f"The signed body is not a sandbox event: {type(exc).__name__}."
        ) from None


# Events -------------------------------------------------------------------------------------------


def event_id(charge: SandboxCharge) -> str:
    """The same for every delivery of one outcome, so the receiver can tell a redelivery."""
    digest = hashlib.sha256(f"{charge.reference}:{charge.status}".encode()).hexdigest()
    return f"evt_sandbox_{digest[:24]}"


def event_payload(charge: SandboxCharge) -> dict:
    return {
        "id": event_id(charge),
        "object": "event",
        "type": f"charge.{charge.status}",
        "created": int((charge.clears_at or charge.created_at).timestamp()),
        "data": {
            "object": {
                "object": "charge",
                "id": charge.reference,
                "idempotency_key": charge.idempotency_key,
                "status": charge.status,
                "decline_code": charge.decline_code or None,
                "amount": charge.amount_minor,
                "currency": charge.currency,
            }
        },
    }


def event_request(
    payload: Mapping, *, secret: str, now: datetime.datetime | None = None
) -> tuple[bytes, dict[str, str]]:
    """(body, headers) of ``payload`` signed as the sandbox signs it, at ``now``."""
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    timestamp = int((now or timezone.now()).timestamp())
    return body, {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: signature_header(body, secret=secret, timestamp=timestamp),
    }


# Delivery -----------------------------------------------------------------------------------------


def http_transport(url: str, body: bytes, headers: Mapping[str, str], *, timeout: float = 10) -> int:
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"Webhook URL must be http:// or https://, not {url!r}.")
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@dataclasses.dataclass(frozen=True)
class Delivery:
    reference: str
    event_id: str
    type: str
    status_code: int | None = None  # None: no answer
    error: str = ""

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def events_due(*, now: datetime.datetime | None = None, after_pk: int = 0, limit: int = 500):
    """Bank debits whose clearing time has passed and whose outcome is not announced yet, by pk."""
    return list(
        SandboxCharge.objects.filter(
            announced_at__isnull=True, clears_at__isnull=False, clears_at__lte=now or timezone.now()
        )
        .filter(pk__gt=after_pk)
        .order_by("pk")[:limit]
    )


def _cleared(charge: SandboxCharge) -> SandboxCharge:
    """The charge in its final state: a debit still pending past its time settles at the first look."""
    if charge.status == Status.PENDING:
        get_gateway("sandbox").retrieve(charge.reference)
        charge.refresh_from_db()
    return charge


def event_deliver(charge: SandboxCharge, *, transport: Transport, url: str, secret: str) -> Delivery:
    """Post the event announcing ``charge``'s outcome; mark it announced only after a 2xx."""
    charge = _cleared(charge)
    if charge.status == Status.PENDING:  # not final yet: nothing to announce
        return Delivery(charge.reference, "", "", error="still pending")
    event = event_payload(charge)
    body, headers = event_request(event, secret=secret)
    try:
        status_code = transport(url, body, headers)
    except Exception as exc:  # a connection error or a timeout: posted again by the next run
        logger.warning("Event %s for %s not delivered to %s: %s", event["id"], charge.reference, url, exc)
        return Delivery(charge.reference, event["id"], event["type"], error=str(exc)[:200])
    delivery = Delivery(charge.reference, event["id"], event["type"], status_code=status_code)
    if delivery.delivered:
        SandboxCharge.objects.filter(pk=charge.pk, announced_at__isnull=True).update(
            announced_at=timezone.now()
        )
        logger.info(
            "Event %s (%s) for %s delivered: %s", event["id"], event["type"], charge.reference, status_code
        )
    else:
        logger.warning(
            "Event %s for %s refused by %s with %s; posted again next run",
            event["id"],
            charge.reference,
            url,
            status_code,
        )
    return delivery


def events_deliver(
    *,
    transport: Transport | None = None,
    url: str | None = None,
    limit: int | None = None,
    stop: threading.Event | None = None,
) -> Iterator[Delivery]:
    """Announce every cleared or failed bank debit not announced yet, oldest first, one at a time.

    Deliveries are at least once: two runs at the same time may post an event twice, and the
    receiver stores it once by its id.
    """
    transport = transport or http_transport
    url = url or settings.SANDBOX_WEBHOOK_URL
    secret = settings.SANDBOX_WEBHOOK_SECRET
    now, last_pk, done = timezone.now(), 0, 0
    while limit is None or done < limit:
        batch = events_due(now=now, after_pk=last_pk, limit=min(500, limit - done) if limit else 500)
        if not batch:
            return
        for charge in batch:
            if stop is not None and stop.is_set():
                return
            last_pk = charge.pk
            done += 1
            yield event_deliver(charge, transport=transport, url=url, secret=secret)
