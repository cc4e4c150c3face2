"""The request bucket every process shares (payments.gateways.ratelimit): in the database, and in
Redis when the cache is Redis. Reservations are spaced one interval apart, whoever makes them, so no
second holds more requests than the rate."""

import itertools
import shutil
import socket
import subprocess
import threading
import time
import uuid

import pytest
from django.core.cache import caches
from django.db import connections

from payments.gateways import ratelimit

RATE = 50
THREADS, TAKES = 4, 10


def _name() -> str:
    return f"test:{uuid.uuid4().hex[:12]}"


def _take_from_threads(make_bucket) -> list[float]:
    """Each thread takes TAKES turns; returns the moments the turns came, in order."""
    moments, lock = [], threading.Lock()

    def work():
        try:
            bucket = make_bucket()
            for _ in range(TAKES):
                bucket.take()
                with lock:
                    moments.append(time.monotonic())
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(moments)


def _assert_paced(moments: list[float]) -> None:
    interval = ratelimit.interval_us(RATE) / 1_000_000
    assert len(moments) == THREADS * TAKES
    # However the threads interleave, no one-second window holds more than the rate, and the turns
    # come at the rate, not slower.
    for i, start in enumerate(moments):
        assert sum(1 for moment in moments[i:] if moment < start + 1) <= RATE
    span = moments[-1] - moments[0]
    assert (len(moments) - 1) * interval * 0.9 <= span <= (len(moments) - 1) * interval + 0.5
    gaps = [b - a for a, b in itertools.pairwise(moments)]
    assert sorted(gaps)[len(gaps) // 2] >= interval * 0.8


def test_the_interval_is_a_little_wider_than_the_rate():
    assert ratelimit.interval_us(20) == int(1_000_000 * ratelimit.HEADROOM / 20) + 1
    assert 20 * ratelimit.interval_us(20) > 1_000_000
    with pytest.raises(ValueError):
        ratelimit.interval_us(0)


def _slots(bucket, n: int) -> list[tuple[float, float]]:
    """n reservations in a row: (the moment each turn comes, by this process's clock; the error)."""
    return [(turn, round_trip / 2 + 0.001) for turn, round_trip in (bucket.reserve_turn() for _ in range(n))]


def _assert_one_interval_apart(bucket) -> None:
    interval = bucket.interval_us / 1_000_000
    slots = _slots(bucket, 3)
    assert all(error < 0.05 for _, error in slots)
    for (a, error_a), (b, error_b) in itertools.pairwise(slots):
        assert b - a == pytest.approx(interval, abs=error_a + error_b)


@pytest.mark.django_db
def test_the_database_bucket_spaces_reservations_by_one_interval():
    bucket = ratelimit.DatabaseBucket(_name(), RATE)
    assert bucket.reserve() <= 0.001  # the first turn is now
    _assert_one_interval_apart(bucket)


@pytest.mark.django_db
def test_a_bucket_idle_for_a_while_gives_the_next_turn_at_once():
    bucket = ratelimit.DatabaseBucket(_name(), 100)
    bucket.take()
    time.sleep(0.05)
    assert bucket.reserve() <= 0.001


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_threads_sharing_the_database_bucket_never_exceed_the_rate():
    name = _name()
    _assert_paced(_take_from_threads(lambda: ratelimit.DatabaseBucket(name, RATE)))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_database_bucket_never_holds_the_callers_transaction():
    """A reservation made inside a transaction of the caller's is committed on its own connection:
    another process's turn does not wait for that transaction to end."""
    from django.db import transaction

    name = _name()
    with transaction.atomic():
        ratelimit.DatabaseBucket(name, RATE).reserve()
        done = threading.Event()

        def other():
            try:
                ratelimit.DatabaseBucket(name, RATE).reserve()
                done.set()
            finally:
                connections.close_all()

        thread = threading.Thread(target=other)
        thread.start()
        thread.join(timeout=5)
        ratelimit.DatabaseBucket.close_own_connections()
        assert done.is_set(), "the second reservation waited for the first caller's transaction"


@pytest.fixture(scope="module")
def redis_url():
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [server, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def redis_cache(settings, redis_url):
    settings.CACHES = {"default": {"BACKEND": "core.cache.RedisCache", "LOCATION": redis_url}}
    yield caches["default"]
    caches["default"].close()


def test_with_a_redis_cache_the_bucket_is_in_redis(redis_cache):
    bucket = ratelimit.shared_bucket(_name(), RATE)
    assert isinstance(bucket, ratelimit.RedisBucket)
    assert bucket.reserve() <= 0.001
    _assert_one_interval_apart(bucket)
    assert redis_cache._cache.get_client(write=True).exists(bucket.key)


def test_threads_sharing_the_redis_bucket_never_exceed_the_rate(redis_cache):
    name = _name()
    _assert_paced(_take_from_threads(lambda: ratelimit.RedisBucket(name, RATE)))


@pytest.mark.django_db
def test_without_redis_the_bucket_is_in_the_database(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert isinstance(ratelimit.shared_bucket(_name(), RATE), ratelimit.DatabaseBucket)
