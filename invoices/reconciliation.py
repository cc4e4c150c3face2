"""Compare our payment attempts with the gateway's own ledger and list every difference."""

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Iterator
from itertools import batched

from invoices.models import PaymentAttempt
from payments.gateways.base import ChargeStatus, Gateway, LedgerEntry

CHARGED_NOT_RECORDED = "charged_not_recorded"
RECORDED_NOT_CHARGED = "recorded_not_charged"
CHARGED_TWICE = "charged_twice"


@dataclasses.dataclass(frozen=True)
class Difference:
    kind: str
    invoice_number: str
    idempotency_keys: tuple[str, ...]
    detail: str


def _attempts_by_key(keys: Iterable[str]) -> dict[str, PaymentAttempt]:
    return {
        a.idempotency_key: a
        for a in PaymentAttempt.objects.filter(idempotency_key__in=list(keys)).select_related("invoice")
    }


def differences(*, gateway: Gateway) -> Iterator[Difference]:
    successes_by_invoice = defaultdict(list)
    charged_keys = set()
    for chunk in batched(gateway.ledger(), 2000):
        attempts = _attempts_by_key(entry.idempotency_key for entry in chunk)
        for entry in chunk:
            entry: LedgerEntry
            attempt = attempts.get(entry.idempotency_key)
            if entry.status != ChargeStatus.SUCCEEDED:
                continue
            charged_keys.add(entry.idempotency_key)
            if attempt is None:
                yield Difference(
                    CHARGED_NOT_RECORDED,
                    "?",
                    (entry.idempotency_key,),
                    f"charge {entry.reference} has no attempt",
                )
                continue
            successes_by_invoice[attempt.invoice.number].append(entry.idempotency_key)
            if attempt.status != PaymentAttempt.Status.SUCCEEDED:
                yield Difference(
                    CHARGED_NOT_RECORDED,
                    attempt.invoice.number,
                    (entry.idempotency_key,),
                    f"gateway charged {entry.reference}; our attempt says {attempt.status}",
                )
    for number, keys in successes_by_invoice.items():
        if len(keys) > 1:
            yield Difference(CHARGED_TWICE, number, tuple(keys), f"{len(keys)} successful charges")
    recorded = PaymentAttempt.objects.filter(status=PaymentAttempt.Status.SUCCEEDED).select_related("invoice")
    for attempt in recorded.iterator(chunk_size=2000):
        if attempt.idempotency_key not in charged_keys:
            yield Difference(
                RECORDED_NOT_CHARGED,
                attempt.invoice.number,
                (attempt.idempotency_key,),
                "our attempt succeeded but the gateway has no successful charge for it",
            )
