"""Card-testing defence: an account may fail to add a payment method only so often per hour.

Counters live in the shared cache (CACHE_URL), so the limit holds across processes and hosts.
"""

import time

from django.conf import settings
from django.core.cache import cache

WINDOW_SECONDS = 3600


def _key(account_id: int, bucket: int) -> str:
    return f"add-method-failures:{account_id}:{bucket}"


def _buckets(now: float) -> tuple[int, int]:
    # Two fixed windows of an hour, weighted, approximate a sliding hour without a list per account.
    current = int(now // WINDOW_SECONDS)
    return current, current - 1


def add_method_failures(*, account_id: int) -> int:
    now = time.time()
    current, previous = _buckets(now)
    counts = cache.get_many([_key(account_id, current), _key(account_id, previous)])
    elapsed = (now % WINDOW_SECONDS) / WINDOW_SECONDS
    return int(
        counts.get(_key(account_id, current), 0) + counts.get(_key(account_id, previous), 0) * (1 - elapsed)
    )


def add_method_blocked(*, account_id: int) -> bool:
    return add_method_failures(account_id=account_id) >= settings.BILLING_ADD_METHOD_FAILURES_PER_HOUR


def add_method_failure_record(*, account_id: int) -> None:
    key = _key(account_id, _buckets(time.time())[0])
    cache.add(key, 0, timeout=2 * WINDOW_SECONDS)
    try:
        cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=2 * WINDOW_SECONDS)
