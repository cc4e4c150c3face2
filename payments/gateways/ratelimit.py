"""One request budget per processor account, shared by every process on every host.

A processor limits the requests per second of an account, whichever machine sends them. The bucket
here holds one token and is refilled ``rate`` times a second: each request reserves the next free
moment, one interval after the previous request's, and sleeps until then. Requests are spaced evenly
and never sent in a burst, so no one-second window holds more than ``rate`` of them, however many
processes share the bucket.

The reservation is one atomic step on a store every process sees, timed by that store's own clock
(hosts' clocks differ): a Lua script in Redis when the shared cache (``CACHE_URL``) is Redis, else one
``UPDATE`` of a row of ``GatewayRateBucket`` in the database.
"""

import threading
import time

from django.conf import settings
from django.core.cache import caches
from django.db import connection, connections

from core.db import database_turn
from payments.models import GatewayRateBucket

REDIS_BACKENDS = frozenset({"core.cache.RedisCache", "django.core.cache.backends.redis.RedisCache"})

# A request's way from the bucket to the processor takes a varying few milliseconds (the sleep wakes
# late, the thread waits for the interpreter or the processor, the network), now and then a few tens.
# Spacing requests this much wider than the rate leaves room in every one-second window for one
# request that arrives a turn late (at 20 a second: 19 turns in any second, not 20), so the window
# stays at or under the rate as the processor counts it (more room would not fit the rate itself).
HEADROOM = 1.06
# A request more than this late for its turn takes another (at most MAX_TURNS, then it goes).
LATE_SECONDS = 0.02
MAX_TURNS = 20

# KEYS[1]: the bucket; ARGV[1]: the interval in microseconds. Returns the wait in microseconds.
RESERVE_LUA = """
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000000 + tonumber(now[2])
local interval = tonumber(ARGV[1])
local slot = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now)
local ttl = math.floor((slot - now) / 1000) + 60000
redis.call('SET', KEYS[1], string.format('%d', slot + interval), 'PX', ttl)
return slot - now
"""

# One statement, so one round trip: the row lock orders concurrent reservations, clock_timestamp()
# is read once the lock is held (an UPDATE that waited computes its row again), and the commit does
# not wait for the disk (a reservation lost in a crash of the database server costs nothing), so the
# lock is held for microseconds.
RESERVE_SQL_POSTGRESQL = """
WITH quick AS (SELECT set_config('synchronous_commit', 'off', true))
UPDATE payments_gatewayratebucket
SET next_at_us = GREATEST(
    next_at_us, CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT)
) + %s
FROM quick WHERE name = %s
RETURNING next_at_us - %s - CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT)
"""
RESERVE_SQL = (
    "UPDATE payments_gatewayratebucket "
    "SET next_at_us = (CASE WHEN next_at_us > %s THEN next_at_us ELSE %s END) + %s "
    "WHERE name = %s RETURNING next_at_us - %s - %s"
)


def interval_us(rate: float) -> int:
    """The spacing between two requests at ``rate`` per second, with the headroom."""
    if rate <= 0:
        raise ValueError("A request rate must be positive.")
    return int(1_000_000 * HEADROOM / rate) + 1


class Bucket:
    """A shared bucket of one token refilled ``rate`` times a second, named ``name``."""

    def __init__(self, name: str, rate: float, *, sleep=time.sleep):
        self.name, self.rate, self.sleep = name, rate, sleep
        self.interval_us = interval_us(rate)

    def reserve(self) -> float:
        """Take the next free moment; returns the seconds to wait until then (0 if it is now)."""
        turn, _round_trip = self.reserve_turn()
        return turn - time.monotonic()

    def reserve_turn(self) -> tuple[float, float]:
        """Take the next free moment: (when it is, by this process's monotonic clock; the round
        trip of the one request that took it, in seconds). The store's clock is read halfway
        through that round trip, as this process sees it."""
        raise NotImplementedError

    def take(self) -> float:
        """Wait for this process's turn; returns how long it waited, in seconds.

        A turn is let go, and another taken, when this process cannot be sure of keeping it: the
        reservation took too long to tell when the turn is, or this process woke up too late for it
        (a busy machine). Sent late, or early, a request would bunch up with the turns next to it,
        and that second would hold more than the rate."""
        started = time.monotonic()
        for _ in range(MAX_TURNS):
            turn, round_trip = self.reserve_turn()
            if round_trip > LATE_SECONDS:
                continue
            left = turn - time.monotonic()
            if left > 0:
                self.sleep(left)
            if time.monotonic() - turn <= LATE_SECONDS:
                break
        return time.monotonic() - started


class RedisBucket(Bucket):
    def __init__(self, name: str, rate: float, *, cache_alias: str = "default", **kwargs):
        super().__init__(name, rate, **kwargs)
        cache = caches[cache_alias]
        self.key = cache.make_key(f"gateway-rate:{name}")
        self.script = cache._cache.get_client(write=True).register_script(RESERVE_LUA)

    def reserve_turn(self) -> tuple[float, float]:
        asked = time.monotonic()
        wait_us = int(self.script(keys=[self.key], args=[self.interval_us]))
        answered = time.monotonic()
        return (asked + answered) / 2 + wait_us / 1_000_000, answered - asked


class DatabaseBucket(Bucket):
    """Reserved in one statement of its own. Called inside a transaction of the caller's (no gateway
    call should be), it reserves on a connection of its own, so the row is never held until that
    transaction ends."""

    _local = threading.local()
    _created: set[str] = set()
    _own: list = []

    def _connection(self):
        if connection.vendor != "postgresql" or not _in_transaction(connection):
            return connection
        own = getattr(self._local, "connection", None)
        if own is None:
            own = self._local.connection = connections.create_connection("default")
            self._own.append(own)
        return own

    @classmethod
    def close_own_connections(cls) -> None:
        while cls._own:
            cls._own.pop().close()
        cls._local = threading.local()

    def _ensure_row(self, db) -> None:
        if self.name in self._created:
            return
        with db.cursor() as cursor:
            if db.vendor == "postgresql":
                cursor.execute(
                    "INSERT INTO payments_gatewayratebucket (name, next_at_us) VALUES (%s, 0) "
                    "ON CONFLICT (name) DO NOTHING",
                    [self.name],
                )
            else:
                GatewayRateBucket.objects.get_or_create(name=self.name)
        self._created.add(self.name)

    def reserve_turn(self) -> tuple[float, float]:
        with database_turn():  # one of many threads with calls in flight: a turn at the database
            return self._reserve_turn()

    def _reserve_turn(self) -> tuple[float, float]:
        db = self._connection()
        self._ensure_row(db)
        db.ensure_connection()
        turn = self._reserve(db)
        if turn is None:  # the row is gone (a database emptied under a running process)
            self._created.discard(self.name)
            self._ensure_row(db)
            turn = self._reserve(db)
        return turn

    def _reserve(self, db) -> tuple[float, float] | None:
        if db.vendor == "postgresql":
            sql, params = RESERVE_SQL_POSTGRESQL, [self.interval_us, self.name, self.interval_us]
        else:
            now = int(time.time() * 1_000_000)
            sql, params = RESERVE_SQL, [now, now, self.interval_us, self.name, self.interval_us, now]
        with db.cursor() as cursor:
            asked = time.monotonic()
            cursor.execute(sql, params)
            row = cursor.fetchone()
            answered = time.monotonic()
        if row is None:
            return None
        return (asked + answered) / 2 + int(row[0]) / 1_000_000, answered - asked


def _in_transaction(db) -> bool:
    # Tests wrap everything in atomic blocks of their own; those don't count.
    return any(not getattr(block, "_from_testcase", False) for block in db.atomic_blocks)


def shared_bucket(name: str, rate: float, **kwargs) -> Bucket:
    """The bucket ``name`` in the store every process shares: Redis if the cache is Redis, else the
    database."""
    if settings.CACHES["default"]["BACKEND"] in REDIS_BACKENDS:
        return RedisBucket(name, rate, **kwargs)
    return DatabaseBucket(name, rate, **kwargs)
