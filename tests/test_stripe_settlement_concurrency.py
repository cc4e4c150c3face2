"""Overlapping runs and kill -9 mid-run, settling through the Stripe gateway against localstripe, with
the ledger checked on Stripe's side: per invoice at most one succeeded PaymentIntent, and each is the
invoice's paid attempt. PostgreSQL, real processes.

localstripe ignores idempotency keys: a call repeated with its key would be a second charge there. The
crash test goes through the proxy as a plain logger (no replays) and shows from its log that every
unknown attempt is looked up before its call is repeated, and that no attempt ever made two
PaymentIntents. The overlap test goes through the proxy honouring keys, as Stripe does."""

import collections
import itertools
import json
import random
import signal
import time

import pytest
from django.core.management import call_command
from django.db import connections
from django.utils import timezone

from invoices.models import Invoice, PaymentAttempt, SettlementRun
from tests import localstripe_server, utils
from tests.stripe_proxy import StripeProxy

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

LEASE = 5
INTENTS = "/v1/payment_intents"


@pytest.fixture(scope="module")
def localstripe():
    with localstripe_server.running_localstripe() as base:
        yield base


@pytest.fixture
def stripe_client(settings, localstripe):
    for name, value in localstripe_server.KEYS.items():
        setattr(settings, name, value)
    settings.STRIPE_API_BASE = localstripe
    settings.PAYMENT_GATEWAY = "stripe"
    settings.GATEWAY_MAX_REQUESTS_PER_SECOND = 1000
    return localstripe_server.client(localstripe)


def _env(base: str, **extra) -> dict:
    return utils.command_env(
        PAYMENT_GATEWAY="stripe", STRIPE_API_BASE=base, **localstripe_server.KEYS, **extra
    )


def _run_to_completion(env, *, runs=4):
    for _ in range(runs):
        proc = utils.manage("settle_invoices", "--json", "--concurrency", "4", env=env)
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        unresolved = PaymentAttempt.objects.filter(status__in=PaymentAttempt.UNRESOLVED).exists()
        if not unresolved and not Invoice.objects.filter(status="open").exists():
            return
        time.sleep(LEASE + 0.5)
    raise AssertionError(f"settlement did not converge: {out} {err[-2000:]}")


def _reconcile_finds_nothing(since):
    # Pages through Stripe's PaymentIntents made since this test began (the server outlives a test's
    # database); exits 1 on any difference.
    call_command("reconcile_payments", "--since", since.isoformat())


def test_overlapping_runs_charge_every_invoice_once_at_stripe(stripe_client, localstripe):
    began = timezone.now()
    expected = localstripe_server.seed_invoices(stripe_client, accounts=20, invoices_per_account=5)
    connections.close_all()
    with StripeProxy(localstripe) as proxy:
        env = _env(proxy.url, GATEWAY_MAX_REQUESTS_PER_SECOND=40)
        # Each takes at most a third, so that all of them share the work however late they start.
        procs = [
            utils.manage("settle_invoices", "--json", "--concurrency", "2", "--limit", "34", env=env)
            for _ in range(4)
        ]
        results = [proc.communicate(timeout=300) for proc in procs]
    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
    counts = [json.loads(out) for out, _ in results]
    assert sum(c["considered"] for c in counts) == len(expected) == 100, "every invoice considered once"
    assert sum(c["errors"] for c in counts) == 0
    assert sum(1 for c in counts if c["considered"]) >= 2, f"the work was shared: {counts}"
    localstripe_server.assert_settled_exactly_once_at_stripe(stripe_client, expected)
    _reconcile_finds_nothing(began)


def test_sigkill_mid_run_against_stripe_never_charges_twice_and_looks_up_before_any_replay(
    stripe_client, localstripe
):
    began = timezone.now()
    expected = localstripe_server.seed_invoices(stripe_client, accounts=12, invoices_per_account=4)
    connections.close_all()
    rng = random.Random(20261202)
    kills = 0
    # The replies come back 30 ms after Stripe acted: a kill often lands on a charge that was made.
    with StripeProxy(localstripe, idempotency=False, latency=0.03) as proxy:
        env = _env(proxy.url, BILLING_LEASE_SECONDS=LEASE, GATEWAY_MAX_REQUESTS_PER_SECOND=30)
        for _ in range(40):
            if kills >= 8 or not Invoice.objects.filter(status="open").exists():
                break
            runs_before = SettlementRun.objects.count()
            proc = utils.manage("settle_invoices", "--concurrency", "4", env=env)
            deadline = time.monotonic() + 60
            while SettlementRun.objects.count() == runs_before and proc.poll() is None:
                assert time.monotonic() < deadline, "settle_invoices never started"
                time.sleep(0.02)
            time.sleep(rng.uniform(0.05, 0.4))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.communicate(timeout=60)
        assert kills >= 6, f"only {kills} kills landed mid-run"
        time.sleep(LEASE + 0.5)
        _run_to_completion(env)
        log = proxy.requests()

    localstripe_server.assert_settled_exactly_once_at_stripe(stripe_client, expected)
    # No attempt ever made two PaymentIntents, although the server would have made one per call.
    keys = set(PaymentAttempt.objects.exclude(idempotency_key=None).values_list("idempotency_key", flat=True))
    per_attempt = collections.Counter(
        intent["metadata"].get("attempt")
        for intent in localstripe_server.all_payment_intents(stripe_client)
        if intent["metadata"].get("attempt") in keys
    )
    assert max(per_attempt.values()) == 1
    # Every call repeated with its key came after a lookup of the customer's PaymentIntents (or of
    # the PaymentIntent itself) made since the call before it.
    creates = collections.defaultdict(list)
    for request in log:
        if request.method == "POST" and request.path == INTENTS:
            creates[request.idempotency_key].append(request)
    lookups = [r for r in log if r.method == "GET" and r.path.startswith(INTENTS)]
    assert lookups, "the killed runs left unknown attempts, and the next runs looked them up"
    repeated = {key: calls for key, calls in creates.items() if len(calls) > 1}
    for calls in repeated.values():
        customer = calls[0].query["customer"]
        for before, again in itertools.pairwise(calls):
            assert any(
                before.at < lookup.at < again.at
                and (lookup.query.get("customer") == customer or lookup.path != INTENTS)
                for lookup in lookups
            ), f"{again.idempotency_key} was repeated without a lookup first"
    print(f"{kills} kills, {len(lookups)} lookups, {len(repeated)} calls repeated after a lookup")
    _reconcile_finds_nothing(began)


def test_a_charge_made_before_the_kill_is_found_by_lookup_and_never_repeated(stripe_client, localstripe):
    """The deterministic case of the test above: the PaymentIntent is made, the process is killed
    before the reply reaches it, and the next run finds the PaymentIntent instead of charging again
    (localstripe would charge again)."""
    expected = localstripe_server.seed_invoices(
        stripe_client, accounts=1, invoices_per_account=1, mix=[(localstripe_server.SUCCEEDS, None, True)]
    )
    connections.close_all()
    with StripeProxy(localstripe, idempotency=False, latency=30) as proxy:
        env = _env(proxy.url, BILLING_LEASE_SECONDS=LEASE)
        proc = utils.manage("settle_invoices", env=env)
        deadline = time.monotonic() + 60
        while ("POST", INTENTS) not in proxy.answered:
            assert time.monotonic() < deadline and proc.poll() is None, "the charge never reached Stripe"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)  # the PaymentIntent exists; its reply is held back
        proc.communicate(timeout=60)
        [attempt] = PaymentAttempt.objects.all()
        assert attempt.status == "started" and not attempt.gateway_reference
        proxy.latency = 0
        time.sleep(LEASE + 0.5)
        _run_to_completion(env)
        log = proxy.requests()
    [create] = [r for r in log if r.method == "POST" and r.path == INTENTS]
    lookups = [r for r in log if r.method == "GET" and r.path == INTENTS and r.at > create.at]
    assert [lookup.query["customer"] for lookup in lookups] == [create.query["customer"]]
    attempt.refresh_from_db()
    assert attempt.status == "succeeded" and attempt.gateway_reference == create.response["id"]
    localstripe_server.assert_settled_exactly_once_at_stripe(stripe_client, expected)
