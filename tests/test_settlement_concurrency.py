"""Overlapping runs, crashes and stalled workers, on PostgreSQL with real processes and transactions."""

import json
import os
import random
import signal
import time

import pytest
from django.core.management import call_command
from django.db import connections

from invoices.models import Invoice, PaymentAttempt, SettlementRun
from tests import utils
from tests.factories import AccountFactory, InvoiceFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

LEASE = 5


def _run_to_completion(env, *, runs=4):
    """Run settle_invoices until nothing is left to resolve (leases of killed workers expire first)."""
    for _ in range(runs):
        proc = utils.manage("settle_invoices", "--json", "--concurrency", "4", env=env)
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        unresolved = PaymentAttempt.objects.filter(status__in=PaymentAttempt.UNRESOLVED).exists()
        leased_open = Invoice.objects.filter(status="open").exists()
        if not unresolved and not leased_open:
            return
        time.sleep(LEASE + 0.5)
    left = list(
        Invoice.objects.filter(status="open").values_list("number", "lease_expires_at", "next_attempt_at")[:5]
    )
    stuck = list(
        PaymentAttempt.objects.filter(status__in=PaymentAttempt.UNRESOLVED).values_list(
            "invoice__number",
            "invoice__status",
            "invoice__lease_expires_at",
            "invoice__next_attempt_at",
            "sequence",
            "status",
            "created_at",
        )[:3]
    )
    raise AssertionError(
        f"settlement did not converge: open {left}, unresolved {stuck}, last run {out} {err[-2000:]}"
    )


def test_eight_overlapping_runs_settle_every_invoice_exactly_once():
    expected = utils.seed_invoices(accounts=200, invoices_per_account=10)
    assert len(expected) == 2000
    connections.close_all()

    procs = [utils.manage("settle_invoices", "--json") for _ in range(8)]
    results = [proc.communicate(timeout=900) for proc in procs]

    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
        assert "deadlock" not in err.lower() and "could not serialize" not in err.lower()
    counts = [json.loads(out) for out, _ in results]
    assert sum(c["considered"] for c in counts) == 2000, "every invoice considered exactly once"
    assert sum(c["errors"] for c in counts) == 0
    assert sum(1 for c in counts if c["considered"]) >= 2, "the work was shared"
    utils.assert_settled_exactly_once(expected)


def test_sigkill_at_random_moments_never_charges_twice_and_loses_nothing():
    expected = utils.seed_invoices(accounts=100, invoices_per_account=5)
    env = utils.command_env(SANDBOX_LATENCY_MS=40, BILLING_LEASE_SECONDS=LEASE)
    connections.close_all()
    rng = random.Random(20261126)
    kills = 0
    for _ in range(60):
        if kills >= 20 or not Invoice.objects.filter(status="open").exists():
            break
        runs_before = SettlementRun.objects.count()
        proc = utils.manage("settle_invoices", "--concurrency", "4", env=env)
        # Kill at a random moment once the run has begun (start-up time varies with the machine's load).
        deadline = time.monotonic() + 60
        while SettlementRun.objects.count() == runs_before and proc.poll() is None:
            assert time.monotonic() < deadline, "settle_invoices never started"
            time.sleep(0.02)
        time.sleep(rng.uniform(0.05, 0.4))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate(timeout=60)
    assert kills >= 20, f"only {kills} kills landed mid-run"
    assert PaymentAttempt.objects.exists(), "the killed runs did some work"

    time.sleep(LEASE + 0.5)
    _run_to_completion(env)
    utils.assert_settled_exactly_once(expected)
    call_command("reconcile_payments")  # exits 1 on any difference


def test_a_stalled_worker_that_outlives_its_lease_changes_nothing():
    account = AccountFactory()
    card = utils.add_card(account, utils.SUCCEEDS)
    invoice = InvoiceFactory(account=account)
    connections.close_all()

    slow = utils.manage(
        "settle_invoices",
        "--json",
        env=utils.command_env(SANDBOX_LATENCY_MS=4000, BILLING_LEASE_SECONDS=LEASE),
    )
    deadline = time.monotonic() + 30
    while not PaymentAttempt.objects.filter(invoice=invoice, status="started").exists():
        assert time.monotonic() < deadline, "the slow worker never started its attempt"
        time.sleep(0.05)
    os.kill(slow.pid, signal.SIGSTOP)
    try:
        time.sleep(LEASE + 0.5)
        other = utils.manage("settle_invoices", "--json", env=utils.command_env(BILLING_LEASE_SECONDS=LEASE))
        out, err = other.communicate(timeout=120)
        assert other.returncode == 0, err
        assert json.loads(out)["paid"] == 1
        invoice.refresh_from_db()
        assert invoice.status == "paid"
        after_takeover = (
            Invoice.objects.filter(pk=invoice.pk).values().get(),
            list(PaymentAttempt.objects.filter(invoice=invoice).values()),
        )
    finally:
        os.kill(slow.pid, signal.SIGCONT)
    out, err = slow.communicate(timeout=120)
    assert slow.returncode == 0, err
    assert json.loads(out)["paid"] == 0
    assert (
        Invoice.objects.filter(pk=invoice.pk).values().get(),
        list(PaymentAttempt.objects.filter(invoice=invoice).values()),
    ) == after_takeover
    assert utils.successful_charges(token=card.token).count() == 1
