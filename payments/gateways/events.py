"""Webhooks: what a gateway tells us on its own, once a signature proves the gateway sent it.

A gateway announces an outcome it reached later (a bank debit that cleared or failed) by posting a
signed event to ``/webhooks/<gateway>/``. ``parse_event`` checks the signature and turns the body into
a ``GatewayEvent``; whoever applies it re-reads the charge from the gateway (``charge_now``) instead of
trusting the event, since events can arrive late, twice or out of order.
"""

import dataclasses
import datetime
from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from .base import ChargeResult, Gateway, GatewayError


class WebhookSignatureError(GatewayError):
    """The body is not a genuine, fresh event from the gateway: no signature, a wrong one, a stale
    timestamp or a body that cannot be read. Nothing of it may be stored or applied."""


@dataclasses.dataclass(frozen=True)
class GatewayEvent:
    """One event as the gateway reports it. ``status`` and ``decline_code`` are what the event says
    at the time it was sent, not necessarily what the charge is now."""

    id: str  # unique per gateway; a redelivery of the same event keeps it
    type: str  # e.g. "charge.succeeded", "charge.failed"
    created: datetime.datetime
    reference: str  # the charge the event is about
    idempotency_key: str = ""  # the charge's key, when the gateway reports it
    status: str = ""
    decline_code: str = ""
    payload: Mapping = dataclasses.field(default_factory=dict, repr=False, compare=False)


@runtime_checkable
class EventSource(Protocol):
    """A gateway that sends webhooks."""

    name: str

    def parse_event(self, body: bytes, headers: Mapping[str, str]) -> GatewayEvent:
        """Verify the signature in ``headers`` over ``body`` and return the event; raises
        WebhookSignatureError when it is not a genuine, fresh event."""


def charge_now(gateway: Gateway, *, reference: str = "", idempotency_key: str = "") -> ChargeResult | None:
    """The charge as the gateway has it now (None if it has none), by reference or else by key.

    A remote call: never inside a database transaction.
    """
    if reference:
        return gateway.retrieve(reference)
    return gateway.find(idempotency_key)
