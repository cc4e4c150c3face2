"""While calls are made together (the settlement's call pool), the sandbox writes their charges in
groups on one connection of its own, and still replies only once a charge is committed: the same
charges, the same replays and faults, far fewer connections and commits. PostgreSQL (real
transactions, several threads)."""

import json
import threading
import time

import pytest
from django.db import connections
from django.utils import timezone

from core.db import Turns, database_turn
from invoices.models import Invoice
from payments.gateways import calls_together, sandbox
from payments.gateways.base import ChargeStatus, GatewayUnavailable
from payments.gateways.sandbox import SandboxGateway
from payments.sandbox.models import SandboxCharge
from payments.sandbox.routers import SANDBOX_DB
from tests import utils

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True, databases="__all__")]


@pytest.fixture
def gateway():
    return SandboxGateway()


def _card(gateway, number=utils.SUCCEEDS):
    return gateway.tokenize_card(number=number, exp_month=12, exp_year=timezone.now().year + 2, cvc="123")


def _charge(gateway, token, key, amount=1000):
    return gateway.charge(
        customer="cus_ledger",
        method_token=token.token,
        amount_minor=amount,
        currency="EUR",
        idempotency_key=key,
        metadata={"attempt": key},
        timeout=5,
    )


def _at_once(count, work):
    """``work(i)`` on ``count`` threads started together; their results (or errors), in order."""
    results = [None] * count
    start = threading.Barrier(count)

    def run(i):
        start.wait()
        try:
            results[i] = work(i)
        except Exception as exc:
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.fixture
def groups(monkeypatch):
    """The size of every group the writer wrote."""
    sizes = []
    write = sandbox._ledger.write_group

    def counted(requests):
        sizes.append(len(requests))
        return write(requests)

    monkeypatch.setattr(sandbox._ledger, "write_group", counted)
    return sizes


def _sandbox_backends() -> int:
    name = connections[SANDBOX_DB].settings_dict["NAME"]
    with connections[SANDBOX_DB].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [name])
        return cursor.fetchone()[0]


def test_charges_made_together_are_written_in_groups_each_once(gateway, groups, settings):
    settings.SANDBOX_LATENCY_MS = 0
    good, declined = _card(gateway), _card(gateway, utils.GENERIC_DECLINE)
    tokens = [good if i % 3 else declined for i in range(96)]

    with calls_together():
        results = _at_once(96, lambda i: _charge(gateway, tokens[i], f"key-{i}", amount=100 + i))

    assert [r.status for r in results] == [
        ChargeStatus.SUCCEEDED if i % 3 else ChargeStatus.FAILED for i in range(96)
    ]
    assert [r.amount_minor for r in results] == [100 + i for i in range(96)]
    charges = SandboxCharge.objects.in_bulk(field_name="idempotency_key")
    assert sorted(charges) == sorted(f"key-{i}" for i in range(96))
    assert all(charges[r.idempotency_key].reference == r.reference for r in results)
    assert sum(groups) == 96
    assert len(groups) < 96, "calls made at once were written together"
    assert not sandbox._ledger.running


def test_a_replay_and_a_racing_first_call_get_the_one_charge(gateway, groups):
    token = _card(gateway)
    first = _charge(gateway, token, "key-once")  # before the pool: written on its own

    with calls_together():
        again = _at_once(8, lambda i: _charge(gateway, token, "key-once" if i < 4 else "key-twice"))

    assert all(r.reference == first.reference for r in again[:4])
    assert len({r.reference for r in again[4:]}) == 1
    assert SandboxCharge.objects.filter(idempotency_key__in=["key-once", "key-twice"]).count() == 2


def test_fault_cards_fail_as_they_do_one_call_at_a_time(gateway):
    lost, timeout = _card(gateway, utils.REPLY_LOST), _card(gateway, utils.TIMEOUT_BEFORE_CHARGE)

    with calls_together():
        first = _at_once(2, lambda i: _charge(gateway, [lost, timeout][i], f"fault-{i}"))
        again = _at_once(2, lambda i: _charge(gateway, [lost, timeout][i], f"fault-{i}"))

    assert all(isinstance(r, GatewayUnavailable) for r in first)
    # The lost reply's charge happened; the timeout struck before any charge; each replay answers.
    assert [r.status for r in again] == [ChargeStatus.SUCCEEDED, ChargeStatus.SUCCEEDED]
    assert SandboxCharge.objects.filter(idempotency_key__in=["fault-0", "fault-1"]).count() == 2


def test_a_write_that_fails_fails_its_calls_and_the_writer_goes_on(gateway, monkeypatch):
    token = _card(gateway)
    write = sandbox._ledger.write_group
    broken = threading.Event()
    broken.set()

    def sometimes(requests):
        if broken.is_set():
            broken.clear()
            raise RuntimeError("the ledger's disk is full")
        return write(requests)

    monkeypatch.setattr(sandbox._ledger, "write_group", sometimes)
    with calls_together():
        with pytest.raises(RuntimeError, match="disk is full"):
            _charge(gateway, token, "key-a")
        after = _charge(gateway, token, "key-a")

    assert after.status == ChargeStatus.SUCCEEDED
    assert SandboxCharge.objects.filter(idempotency_key="key-a").count() == 1


def test_calls_in_flight_hold_no_ledger_connection_each(gateway, settings):
    settings.SANDBOX_LATENCY_MS = 300
    token = _card(gateway)
    seen, done = [], threading.Event()

    def watch():
        while not done.is_set():
            seen.append(_sandbox_backends())
            time.sleep(0.01)
        connections.close_all()

    with calls_together():
        watcher = threading.Thread(target=watch)
        watcher.start()
        results = _at_once(60, lambda i: _charge(gateway, token, f"key-{i}"))
        done.set()
        watcher.join()
    assert all(r.status == ChargeStatus.SUCCEEDED for r in results)
    # This test's own connection, the watcher's and the writer's, not one per call in flight.
    assert len(seen) > 10 and max(seen) <= 4, seen


def test_256_calls_in_flight_on_a_stock_postgresql():
    """settle_invoices --concurrency 256 with 200 ms of latency: max_connections is 100, and every
    invoice is settled exactly once."""
    with connections["default"].cursor() as cursor:
        cursor.execute("SHOW max_connections")
        assert int(cursor.fetchone()[0]) <= 256, "the point is fewer connections than calls"
    expected = utils.seed_invoices(accounts=300, invoices_per_account=2)
    connections.close_all()
    env = utils.command_env(SANDBOX_LATENCY_MS=200)

    proc = utils.manage("settle_invoices", "--json", "--concurrency", "256", env=env)
    out, err = proc.communicate(timeout=300)

    assert proc.returncode == 0, err
    assert json.loads(out)["considered"] == len(expected)
    assert not Invoice.objects.filter(status="open").exists()
    utils.assert_settled_exactly_once(expected)


def test_threads_that_take_turns_hold_at_most_that_many_connections():
    """``core.db``: 40 threads with slow database work, 4 turns: never more than 4 of their
    connections at once, and none kept after a turn."""
    turns = Turns(4)
    inside, most, kept = [0], [0], []
    lock = threading.Lock()

    def work(_i):
        turns.join()
        with database_turn():
            with connections["default"].cursor() as cursor:
                cursor.execute("SELECT 1")
            with lock:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            time.sleep(0.02)
            with lock:
                inside[0] -= 1
        kept.append(connections["default"].connection is not None)

    _at_once(40, work)

    assert most[0] == 4
    assert not any(kept)
