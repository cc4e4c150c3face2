"""Compare our payment attempts with the gateway's own records and list every difference.

The gateway's charges are read page by page (``Gateway.list_charges``), since a point in time if
given, never all at once; each charge is matched to our attempt by the attempt key it carries.
"""

import dataclasses
import datetime
from collections import defaultdict
from collections.abc import Iterable, Iterator

from invoices.models import PaymentAttempt
from payments.gateways.base import ChargeStatus, Gateway, LedgerEntry

PAGE_SIZE = 2000

CHARGED_NOT_RECORDED = "charged_not_recorded"
RECORDED_NOT_CHARGED = "recorded_not_charged"
CHARGED_TWICE = "charged_twice"
# Not a difference yet: the gateway charged, and our attempt is still unresolved. The next
# settlement run resolves it by looking it up, and records the charge.
AWAITING_RECOVERY = "awaiting_recovery"


@dataclasses.dataclass(frozen=True)
class Difference:
    kind: str
    invoice_number: str
    idempotency_keys: tuple[str, ...]
    detail: str

    @property
    def is_real(self) -> bool:
        """A real difference needs a person; one awaiting recovery resolves itself."""
        return self.kind != AWAITING_RECOVERY


def _attempts_by_key(keys: Iterable[str]) -> dict[str, PaymentAttempt]:
    return {
        a.idempotency_key: a
        for a in PaymentAttempt.objects.filter(idempotency_key__in=list(keys)).select_related("invoice")
    }


def charge_pages(
    gateway: Gateway, *, since: datetime.datetime | None = None, page_size: int = PAGE_SIZE
) -> Iterator[list[LedgerEntry]]:
    """The gateway's charges made at or after ``since`` (all if None), a page at a time."""
    cursor = ""
    while True:
        page = gateway.list_charges(since=since, cursor=cursor, limit=page_size)
        if page.entries:
            yield page.entries
        if not page.next_cursor:
            return
        cursor = page.next_cursor


def differences(
    *, gateway: Gateway, since: datetime.datetime | None = None, page_size: int = PAGE_SIZE
) -> Iterator[Difference]:
    """Every difference between the gateway's charges and our attempts; with ``since``, only charges
    and attempts from then on."""
    successes_by_invoice = defaultdict(list)
    charged_keys = set()
    for page in charge_pages(gateway, since=since, page_size=page_size):
        attempts = _attempts_by_key(entry.attempt_key for entry in page)
        for entry in page:
            key = entry.attempt_key
            attempt = attempts.get(key)
            if entry.status != ChargeStatus.SUCCEEDED:
                continue
            charged_keys.add(key)
            if attempt is None:
                yield Difference(
                    CHARGED_NOT_RECORDED, "?", (key,), f"charge {entry.reference} has no attempt"
                )
                continue
            successes_by_invoice[attempt.invoice.number].append(key)
            if attempt.is_unresolved:
                yield Difference(
                    AWAITING_RECOVERY,
                    attempt.invoice.number,
                    (key,),
                    f"gateway charged {entry.reference}; our attempt is {attempt.status} until the next run "
                    "resolves it",
                )
            elif attempt.status != PaymentAttempt.Status.SUCCEEDED:
                yield Difference(
                    CHARGED_NOT_RECORDED,
                    attempt.invoice.number,
                    (key,),
                    f"gateway charged {entry.reference}; our attempt says {attempt.status}",
                )
    for number, keys in successes_by_invoice.items():
        if len(keys) > 1:
            yield Difference(CHARGED_TWICE, number, tuple(keys), f"{len(keys)} successful charges")
    recorded = PaymentAttempt.objects.filter(status=PaymentAttempt.Status.SUCCEEDED).select_related("invoice")
    if since is not None:
        recorded = recorded.filter(created_at__gte=since)
    for attempt in recorded.iterator(chunk_size=2000):
        if attempt.idempotency_key not in charged_keys:
            yield Difference(
                RECORDED_NOT_CHARGED,
                attempt.invoice.number,
                (attempt.idempotency_key,),
                "our attempt succeeded but the gateway has no successful charge for it",
            )
