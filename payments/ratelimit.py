"""Card-testing defence: an account whose new payment methods the gateway refuses too often in an
hour may not add any for an hour.

Only refusals count: details that reached the gateway and were turned down. A typing mistake the
form catches (an empty field, a number failing the Luhn check, a past expiry date, an unticked
mandate box) never reaches the gateway, tells a card tester nothing, and is shown next to its field.

Counters and the block live in the shared cache (CACHE_URL), so the limit holds across processes and
hosts. The block is a key of its own that holds when it ends, so the page can say how long the wait
is, and support can lift it (``add_method_block_lift``).
"""

import datetime
import time

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

WINDOW_SECONDS = 3600
# How long adding methods stays paused once the limit is reached.
BLOCK_SECONDS = WINDOW_SECONDS


def _key(account_id: int, bucket: int) -> str:
    return f"add-method-failures:{account_id}:{bucket}"


def _block_key(account_id: int) -> str:
    return f"add-method-blocked:{account_id}"


def _buckets(now: float) -> tuple[int, int]:
    # Two fixed windows of an hour, weighted, approximate a sliding hour without a list per account.
    current = int(now // WINDOW_SECONDS)
    return current, current - 1


def add_method_failures(*, account_id: int) -> int:
    """Refusals in about the last hour."""
    now = time.time()
    current, previous = _buckets(now)
    counts = cache.get_many([_key(account_id, current), _key(account_id, previous)])
    elapsed = (now % WINDOW_SECONDS) / WINDOW_SECONDS
    return int(
        counts.get(_key(account_id, current), 0) + counts.get(_key(account_id, previous), 0) * (1 - elapsed)
    )


def add_method_blocked_until(*, account_id: int) -> datetime.datetime | None:
    """When adding methods opens again for the account; None if it is open now."""
    until = cache.get(_block_key(account_id))
    if until is None or until <= time.time():
        return None
    return datetime.datetime.fromtimestamp(until, tz=datetime.UTC)


def add_method_blocked(*, account_id: int) -> bool:
    return add_method_blocked_until(account_id=account_id) is not None


def add_method_wait_minutes(until: datetime.datetime) -> int:
    """Whole minutes left until ``until``, rounded up: "in 1 minute", never "in 0 minutes"."""
    seconds = (until - timezone.now()).total_seconds()
    return max(1, -int(-seconds // 60))


def add_method_failure_record(*, account_id: int) -> None:
    """Count one set of details the gateway refused; at the limit, pause adding for BLOCK_SECONDS."""
    key = _key(account_id, _buckets(time.time())[0])
    cache.add(key, 0, timeout=2 * WINDOW_SECONDS)
    try:
        cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=2 * WINDOW_SECONDS)
    if add_method_failures(account_id=account_id) >= settings.BILLING_ADD_METHOD_FAILURES_PER_HOUR:
        cache.add(_block_key(account_id), time.time() + BLOCK_SECONDS, timeout=BLOCK_SECONDS)


def add_method_block_lift(*, account_id: int) -> bool:
    """End the account's block and forget its refusals; True if it was blocked."""
    was_blocked = add_method_blocked(account_id=account_id)
    now = time.time()
    cache.delete_many([_block_key(account_id), *(_key(account_id, b) for b in _buckets(now))])
    return was_blocked
