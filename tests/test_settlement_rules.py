"""Settlement rules under card-network limits and crashes: the re-attempt cap counts every attempt,
a declined card costs one decline per run, killed runs are taken over quickly and shown as such."""

import datetime
import json
import random
import re
import signal
import threading
import time
from collections import Counter

import pytest
import time_machine
from django.core.management import call_command
from django.db import OperationalError, connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from invoices.models import Invoice, PaymentAttempt, SettlementRun
from invoices.settlement import cascade, settlement_run
from invoices.settlement.keeper import runs_mark_interrupted
from tests import utils
from tests.factories import AccountFactory, InvoiceFactory

Status = PaymentAttempt.Status
SkipReason = PaymentAttempt.SkipReason


def _due_invoices(account, n):
    return [InvoiceFactory(account=account, number=f"R-{account.pk}-{i:04d}") for i in range(n)]


@pytest.mark.django_db(transaction=True)
def test_forty_invoices_on_a_declined_card_cost_one_decline():
    account = AccountFactory(currency="USD")
    card = utils.add_card(account, utils.GENERIC_DECLINE)
    invoices = _due_invoices(account, 40)

    settlement_run(concurrency=4)

    attempts = PaymentAttempt.objects.filter(method=card)
    assert attempts.exclude(status=Status.SKIPPED).count() == 1
    assert utils.SandboxCharge.objects.filter(token=card.token).count() == 1
    skips = attempts.filter(status=Status.SKIPPED)
    assert skips.count() == 39
    assert set(skips.values_list("skip_reason", flat=True)) == {SkipReason.DECLINED_IN_RUN}
    assert set(Invoice.objects.filter(pk__in=[i.pk for i in invoices]).values_list("status", flat=True)) == {
        Invoice.Status.PAST_DUE
    }


@pytest.mark.django_db(transaction=True)
def test_a_declined_primary_in_this_run_sends_the_next_invoices_straight_to_the_backup():
    account = AccountFactory(currency="USD")
    primary = utils.add_card(account, utils.GENERIC_DECLINE)
    backup = utils.add_card(account, utils.SUCCEEDS)
    _due_invoices(account, 5)

    settlement_run()

    assert (
        Invoice.objects.filter(account=account, status=Invoice.Status.PAID, paid_by_method=backup).count()
        == 5
    )
    assert utils.SandboxCharge.objects.filter(token=primary.token).count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_cap_counts_the_runs_own_attempts(settings):
    """Each invoice has its own card-testing budget no more: the cap counts attempts the run itself
    just made, whatever the batch they were read in."""
    settings.BILLING_REATTEMPT_CAP = 3
    account = AccountFactory(currency="USD")
    card = utils.add_card(account, utils.REPLY_LOST)  # charged, but every reply is lost: unknown
    _due_invoices(account, 8)

    settlement_run(concurrency=4)

    assert PaymentAttempt.objects.filter(method=card).exclude(status=Status.SKIPPED).count() == 3
    assert PaymentAttempt.objects.filter(method=card, skip_reason=SkipReason.REATTEMPT_CAP).count() == 5


@pytest.mark.django_db(transaction=True)
def test_successful_charges_do_not_use_up_the_cap(settings):
    settings.BILLING_REATTEMPT_CAP = 2
    account = AccountFactory(currency="USD")
    card = utils.add_card(account, utils.SUCCEEDS)
    _due_invoices(account, 5)

    settlement_run()

    assert (
        Invoice.objects.filter(account=account, status=Invoice.Status.PAID, paid_by_method=card).count() == 5
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_never_exceed_the_cap_together(settings):
    """Two runs at once over 200 invoices of one account whose card never gets a definite answer:
    the card is attempted at most BILLING_REATTEMPT_CAP times in all, not that many per run."""
    account = AccountFactory(currency="USD")
    card = utils.add_card(account, utils.REPLY_LOST)
    _due_invoices(account, 200)
    connections.close_all()
    env = utils.command_env(BILLING_REATTEMPT_CAP=4, SANDBOX_LATENCY_MS=30)

    procs = [utils.manage("settle_invoices", "--json", "--concurrency", "8", env=env) for _ in range(2)]
    results = [proc.communicate(timeout=600) for proc in procs]

    for proc, (_out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
    # Between them every invoice was considered (one whose reply was lost may be taken up again by
    # the other run, to be resolved); the card was attempted no more than the cap allows in all.
    # An attempt whose lost reply the other run resolved went through (this card's charges do), so
    # it is no longer one the cap counts, and the card may be tried once more in its place.
    assert sum(json.loads(out)["considered"] for out, _ in results) >= 200
    charged = PaymentAttempt.objects.filter(method=card).exclude(status=Status.SKIPPED)
    assert charged.exclude(status=Status.SUCCEEDED).count() == 4
    assert utils.SandboxCharge.objects.filter(token=card.token).count() == charged.count()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_with_a_declined_card_stay_under_the_cap():
    account = AccountFactory(currency="USD")
    card = utils.add_card(account, utils.GENERIC_DECLINE)
    _due_invoices(account, 200)
    connections.close_all()
    env = utils.command_env(SANDBOX_LATENCY_MS=30)

    procs = [utils.manage("settle_invoices", "--json", "--concurrency", "8", env=env) for _ in range(2)]
    for proc in procs:
        _out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err

    charged = PaymentAttempt.objects.filter(method=card).exclude(status=Status.SKIPPED).count()
    assert 1 <= charged <= 2  # one decline per run
    assert Invoice.objects.filter(account=account, status=Invoice.Status.PAST_DUE).count() == 200


@pytest.mark.django_db
def test_a_run_whose_heartbeat_stopped_is_shown_interrupted_with_its_counts():
    beat = timezone.now() - datetime.timedelta(minutes=5)
    killed = SettlementRun.objects.create(host="h", as_of=beat, heartbeat_at=beat, paid=7, considered=9)
    alive = SettlementRun.objects.create(host="h", as_of=beat, heartbeat_at=timezone.now())

    assert runs_mark_interrupted() == 1

    killed.refresh_from_db()
    alive.refresh_from_db()
    assert (killed.status, killed.finished_at, killed.paid, killed.considered) == ("interrupted", beat, 7, 9)
    assert alive.status == SettlementRun.Status.RUNNING


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_killed_runs_are_taken_over_within_thirty_seconds_and_no_declined_method_is_charged_twice():
    """kill -9 at random moments with the default lease; 30 s later one run settles everything."""
    expected = utils.seed_invoices(accounts=200, invoices_per_account=5)
    env = utils.command_env(SANDBOX_LATENCY_MS=100)
    connections.close_all()
    rng = random.Random(20261201)
    kills = 0
    for _ in range(80):
        if kills >= 20 or not Invoice.objects.filter(status="open").exists():
            break
        runs_before = SettlementRun.objects.count()
        # Each killed run strands at most 30 invoices behind its lease (a whole claim window would
        # leave the next runs nothing to claim until the leases ran out): the kills keep landing
        # mid-run however fast the machine is.
        proc = utils.manage("settle_invoices", "--concurrency", "4", "--limit", "30", env=env)
        deadline = time.monotonic() + 60
        while SettlementRun.objects.count() == runs_before and proc.poll() is None:
            assert time.monotonic() < deadline, "settle_invoices never started"
            time.sleep(0.02)
        time.sleep(rng.uniform(0.05, 0.5))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=60)
            # Landed mid-run: the run had not finished its work when it died.
            run = SettlementRun.objects.order_by("-pk").first()
            kills += run.status == SettlementRun.Status.RUNNING
        else:
            proc.communicate(timeout=60)
    assert kills >= 20, f"only {kills} kills landed mid-run"

    time.sleep(30)
    final = utils.manage("settle_invoices", "--json", "--concurrency", "4", env=env)
    out, err = final.communicate(timeout=600)
    assert final.returncode == 0, err
    assert json.loads(out)["errors"] == 0

    utils.assert_settled_exactly_once(expected)
    charged = Counter(
        PaymentAttempt.objects.filter(status__in=[Status.FAILED, Status.SUCCEEDED]).values_list(
            "invoice_id", "retry_round", "method_id"
        )
    )
    assert max(charged.values()) == 1, "a method was charged twice for one invoice in one round"
    assert not SettlementRun.objects.filter(status=SettlementRun.Status.RUNNING).exists()
    interrupted = SettlementRun.objects.filter(status=SettlementRun.Status.INTERRUPTED)
    assert interrupted.count() == kills
    assert all(run.finished_at is not None for run in interrupted)
    call_command("reconcile_payments")  # exits 1 on any difference


@pytest.mark.django_db(transaction=True)
def test_a_card_removed_while_its_charge_is_unresolved_is_never_charged():
    """The charge timed out before reaching the gateway; the customer then removes the card. The
    next run finds no charge for it, closes the attempt as not charged and the backup pays."""
    from payments.services import payment_method_remove

    account = AccountFactory(currency="USD")
    flaky = utils.add_card(account, utils.TIMEOUT_BEFORE_CHARGE)
    backup = utils.add_card(account, utils.SUCCEEDS)
    invoice = InvoiceFactory(account=account)
    settlement_run()
    assert list(invoice.attempts.values_list("status", flat=True)) == [Status.UNKNOWN]
    payment_method_remove(method=flaky, actor=None)

    later = timezone.now() + datetime.timedelta(minutes=5)
    with time_machine.travel(later):
        summary = settlement_run()

    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID and invoice.paid_by_method == backup
    # Today's order: removing the primary promoted the backup to primary.
    assert (summary.counts["paid"], summary.counts["paid_by_primary"]) == (1, 1)
    assert list(invoice.attempts.order_by("sequence").values_list("method", "status")) == [
        (flaky.pk, Status.CANCELED),
        (backup.pk, Status.SUCCEEDED),
    ]
    assert not utils.SandboxCharge.objects.filter(token=flaky.token).exists()
    assert utils.successful_charges().count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_removed_card_is_not_given_up_on_while_a_stalled_call_could_still_land():
    """Right after the timeout, a paused worker could still deliver the charge: the attempt stays
    unresolved and nothing else is charged until that can no longer happen."""
    from payments.services import payment_method_remove

    account = AccountFactory(currency="USD")
    flaky = utils.add_card(account, utils.TIMEOUT_BEFORE_CHARGE)
    backup = utils.add_card(account, utils.SUCCEEDS)
    invoice = InvoiceFactory(account=account)
    settlement_run()
    payment_method_remove(method=flaky, actor=None)

    with time_machine.travel(timezone.now() + datetime.timedelta(seconds=2)):
        settlement_run()

    assert invoice.attempts.get().status == Status.UNKNOWN
    assert not utils.successful_charges(token=backup.token).exists()
    assert not utils.SandboxCharge.objects.filter(token=flaky.token).exists()


@pytest.mark.django_db(transaction=True)
def test_a_worker_unsure_of_its_lease_calls_nothing(monkeypatch):
    from invoices.settlement import keeper

    account = AccountFactory(currency="USD")
    card = utils.add_card(account, utils.SUCCEEDS)
    invoice = InvoiceFactory(account=account)
    monkeypatch.setattr(keeper.LeaseKeeper, "fresh", lambda self, item: False)

    summary = settlement_run()

    assert summary.counts["paid"] == 0
    assert not utils.SandboxCharge.objects.filter(token=card.token).exists()
    assert invoice.attempts.get().status == Status.STARTED  # resolved by whoever holds it next


@pytest.mark.django_db(transaction=True)
def test_reconcile_lists_an_attempt_awaiting_recovery_apart_and_exits_zero():
    """The gateway charged but its reply was lost: until the next run resolves the attempt, that is
    in flight, not a difference. Once resolved, nothing is listed at all."""
    import io

    account = AccountFactory(currency="USD")
    utils.add_card(account, utils.REPLY_LOST)
    invoice = InvoiceFactory(account=account)
    settlement_run()
    assert invoice.attempts.get().status == Status.UNKNOWN

    out = io.StringIO()
    call_command("reconcile_payments", "--json", stdout=out)  # no SystemExit: exit 0
    report = json.loads(out.getvalue())
    assert report["differences"] == []
    [waiting] = report["in_flight"]
    assert (waiting["kind"], waiting["invoice"]) == ("awaiting_recovery", invoice.number)

    settlement_run(as_of=timezone.now() + datetime.timedelta(minutes=1))
    out = io.StringIO()
    call_command("reconcile_payments", "--json", stdout=out)
    assert json.loads(out.getvalue()) == {"differences": [], "in_flight": []}


@pytest.mark.django_db(transaction=True)
def test_reconcile_exits_one_on_a_planted_real_difference():
    import io

    account = AccountFactory(currency="USD")
    utils.add_card(account, utils.SUCCEEDS)
    invoice = InvoiceFactory(account=account)
    settlement_run()
    # Our books say declined, the gateway's say charged: a person must look.
    PaymentAttempt.objects.filter(invoice=invoice).update(
        status=Status.FAILED, decline_code="generic_decline"
    )

    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("reconcile_payments", "--json", stdout=out)
    assert exit_info.value.code == 1
    [difference] = json.loads(out.getvalue())["differences"]
    assert (difference["kind"], difference["invoice"]) == ("charged_not_recorded", invoice.number)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_step_that_blocks_a_card_locks_the_methods_it_counts_on_before_it_writes_one():
    """Two runs blocking a card of an account and counting its others must take the methods' row
    locks in one order, or each waits on the other (a deadlock, and a failed step): the step locks
    them together, ordered, before it writes the block."""
    account = AccountFactory(currency="USD")
    lost = utils.add_card(account, utils.LOST_CARD)
    utils.add_card(account, utils.SUCCEEDS)
    _due_invoices(account, 2)

    with CaptureQueriesContext(connection) as queries:
        settlement_run()

    lost.refresh_from_db()
    assert lost.blocked_at is not None
    statements = [query["sql"] for query in queries.captured_queries]
    method_writes = [
        i for i, sql in enumerate(statements) if sql.startswith('UPDATE "payments_paymentmethod"')
    ]
    method_locks = [
        i
        for i, sql in enumerate(statements)
        if 'FROM "payments_paymentmethod"' in sql and re.search(r"FOR (NO KEY )?UPDATE$", sql.rstrip())
    ]
    # Each step's transaction opens with its fence (the invoices' rows, locked).
    fences = [
        i for i, sql in enumerate(statements) if 'FROM "invoices_invoice"' in sql and "FOR UPDATE" in sql
    ]
    assert method_writes and fences
    step_began = max(i for i in fences if i < method_writes[0])
    assert any(step_began < i < method_writes[0] for i in method_locks), "locked in order first, then written"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_another_runs_writes_naming_a_method_do_not_wait_on_a_steps_method_locks(monkeypatch):
    """While a step holds its methods' row locks (counting their attempts), another run's step
    writes rows that name those methods (an invoice paid by one, an attempt on one): their foreign-
    key checks must not wait on the locks. Waiting both ways, two runs deadlocked."""
    account = AccountFactory(currency="USD")
    card = utils.add_card(account, utils.SUCCEEDS)
    _due_invoices(account, 1)
    elsewhere = InvoiceFactory(account=account, next_attempt_at=timezone.now() + datetime.timedelta(days=9))
    waited = []

    def another_run_writes():
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '2s'")
                # The checks run at commit as Django defers them; here at the statement, then undone.
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cursor.execute(
                    "UPDATE invoices_invoice SET paid_by_method_id = %s WHERE id = %s",
                    [card.pk, elsewhere.pk],
                )
                transaction.set_rollback(True)
        except OperationalError as exc:
            waited.append(exc)
        finally:
            connections.close_all()

    counts = cascade.recent_attempt_counts

    def counting_meanwhile(**kwargs):
        other = threading.Thread(target=another_run_writes)
        other.start()
        other.join()
        return counts(**kwargs)

    monkeypatch.setattr(cascade, "recent_attempt_counts", counting_meanwhile)
    settlement_run()

    assert not waited, waited
    assert Invoice.objects.filter(account=account, status=Invoice.Status.PAID).count() == 1
