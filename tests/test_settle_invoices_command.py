"""settle_invoices as operators run it: dry run, exit codes, output, queries per invoice."""

import io
import json
import signal
import subprocess
import sys
import time

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from invoices.models import Invoice, PaymentAttempt, SettlementRun
from invoices.settlement import cascade
from notifications.models import SentEmail
from payments.sandbox.models import SandboxCharge
from tests import utils
from tests.factories import AccountFactory, InvoiceFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _snapshot():
    from django.apps import apps

    rows = {}
    for model in apps.get_models():
        db = "sandbox" if model._meta.app_label == "sandbox" else "default"
        if model._meta.app_label == "sessions":
            continue
        rows[model._meta.label] = sorted(
            tuple(sorted((k, str(v)) for k, v in row.items())) for row in model.objects.using(db).values()
        )
    return rows


def _mixed_accounts():
    a = AccountFactory()
    utils.add_card(a, utils.GENERIC_DECLINE)
    utils.add_card(a, utils.SUCCEEDS)
    b = AccountFactory(currency="EUR")
    utils.add_ach(b)
    utils.add_card(b, utils.LOST_CARD)
    InvoiceFactory(account=a)
    InvoiceFactory(account=b)
    InvoiceFactory(account=AccountFactory())
    return a, b


def test_dry_run_changes_nothing_and_says_what_it_would_do():
    _mixed_accounts()
    before = _snapshot()
    out = io.StringIO()

    call_command("settle_invoices", "--dry-run", stdout=out)

    assert _snapshot() == before
    text = out.getvalue()
    assert "3 invoice(s) due" in text
    assert "try   Primary: Visa •••• 0002" in text
    assert "try   Backup 1: Visa •••• 4242" in text
    assert "skip  Primary: " in text and "cannot pay this currency" in text
    assert "no method in the charge order" in text


def test_exit_code_is_1_when_an_invoice_hits_an_unexpected_error_and_the_others_still_settle(monkeypatch):
    good = AccountFactory()
    utils.add_card(good, utils.SUCCEEDS)
    bad = AccountFactory()
    utils.add_card(bad, utils.SUCCEEDS)
    ok_invoice = InvoiceFactory(account=good)
    broken_invoice = InvoiceFactory(account=bad)
    real = cascade.Cascade._advance

    def explode_for_one(engine, item, step):
        if item.invoice.pk == broken_invoice.pk:
            raise RuntimeError("disk on fire")
        return real(engine, item, step)

    monkeypatch.setattr(cascade.Cascade, "_advance", explode_for_one)
    with pytest.raises(SystemExit) as exit_info:
        call_command("settle_invoices", "--json", stdout=io.StringIO())
    assert exit_info.value.code == 1
    ok_invoice.refresh_from_db()
    assert ok_invoice.status == Invoice.Status.PAID
    run = SettlementRun.objects.get()
    assert (run.errors, run.paid, run.status) == (1, 1, SettlementRun.Status.COMPLETED)


def test_declines_are_normal_results_exit_0():
    _mixed_accounts()
    call_command("settle_invoices", stdout=io.StringIO())  # no SystemExit


@pytest.mark.parametrize(
    "args",
    [["--as-of", "yesterday"], ["--limit", "0"], ["--concurrency", "0"], ["--account", "999999"]],
)
def test_bad_arguments_are_exit_2(args):
    with pytest.raises(CommandError) as error:
        call_command("settle_invoices", *args)
    assert error.value.returncode == 2


def test_bad_arguments_from_the_shell_exit_2():
    proc = utils.manage("settle_invoices", "--limit", "many", env=utils.command_env())
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "--limit" in err


def test_bad_configuration_exits_2():
    proc = utils.manage("settle_invoices", env=utils.command_env(BILLING_RETRY_DAYS="5,1"))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert "BILLING_RETRY_DAYS" in err


def test_limit_account_and_verbose_lines():
    a, b = _mixed_accounts()
    out = io.StringIO()
    call_command("settle_invoices", "--account", str(a.pk), "-v", "2", stdout=out)
    assert Invoice.objects.filter(account=a, status="paid").count() == 1
    assert Invoice.objects.filter(account=b, status="open").count() == 1
    assert ": paid — Paid with Visa •••• 4242 (Backup 1)." in out.getvalue()
    call_command("settle_invoices", "--limit", "1", stdout=io.StringIO())
    assert SettlementRun.objects.latest("pk").considered == 1


def test_run_is_recorded():
    _mixed_accounts()
    call_command("settle_invoices", "--json", stdout=io.StringIO())
    run = SettlementRun.objects.get()
    assert run.finished_at and run.host and run.considered == 3 and run.paid == 1
    assert PaymentAttempt.objects.filter(run=run).exists()


def test_concurrency_option_settles_everything_with_threads():
    accounts = [AccountFactory() for _ in range(6)]
    for account in accounts:
        utils.add_card(account, utils.GENERIC_DECLINE)
        utils.add_card(account, utils.SUCCEEDS)
        for _ in range(3):
            InvoiceFactory(account=account)
    call_command("settle_invoices", "--concurrency", "4", stdout=io.StringIO())
    assert Invoice.objects.filter(status="paid").count() == 18
    assert SandboxCharge.objects.filter(status="succeeded").count() == 18


def _queries_for_one_invoice(n_methods: int, n_invoices: int) -> int:
    account = AccountFactory()
    for _ in range(n_methods - 1):
        utils.add_card(account, utils.SUCCEEDS, in_order=False)
    # The primary pays; backups exist but are never needed.
    primary = utils.add_card(account, utils.SUCCEEDS, in_order=False)
    from payments.services import charge_order_ids, charge_order_set

    others = charge_order_ids(account=account)
    charge_order_set(account=account, actor=None, method_ids=[primary.pk, *others])
    others_methods = account.payment_methods.exclude(pk=primary.pk)
    charge_order_set(
        account=account, actor=None, method_ids=[primary.pk, *[m.pk for m in others_methods][: n_methods - 1]]
    )
    for _ in range(n_invoices):
        InvoiceFactory(account=account)
    from invoices.settlement import settlement_run

    with CaptureQueriesContext(connection) as queries:
        settlement_run()
    Invoice.objects.update(status="void")
    return len(queries)


def test_queries_per_invoice_do_not_grow_with_methods_or_invoices(settings):
    settings.BILLING_MAX_BACKUPS = 10
    one = _queries_for_one_invoice(n_methods=1, n_invoices=1)
    many_methods = _queries_for_one_invoice(n_methods=8, n_invoices=1)
    ten = _queries_for_one_invoice(n_methods=1, n_invoices=10)
    assert many_methods == one
    per_invoice = (ten - one) / 9
    assert per_invoice <= 16
    # The batch overhead is paid once per batch, not once per invoice.
    assert ten <= one + 9 * per_invoice


def test_reconcile_payments_reports_no_difference_after_settlement_and_catches_a_stray_charge():
    _mixed_accounts()
    call_command("settle_invoices", stdout=io.StringIO())
    out = io.StringIO()
    call_command("reconcile_payments", stdout=out)
    assert "No differences" in out.getvalue()

    # A charge the gateway made that we never recorded (e.g. made by hand at the processor).
    token = SandboxCharge.objects.filter(status="succeeded").first().token
    from payments.gateways import get_gateway

    get_gateway().charge(
        customer="",
        method_token=token,
        amount_minor=999,
        currency="USD",
        idempotency_key="stray-1",
        metadata={},
        timeout=5,
    )
    # And an attempt we believe succeeded twice for one invoice.
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("reconcile_payments", stdout=out)
    assert exit_info.value.code == 1
    assert "charged_not_recorded" in out.getvalue() and "stray-1" in out.getvalue()


def test_reconcile_payments_finds_charged_twice_and_recorded_not_charged():
    account = AccountFactory()
    method = utils.add_card(account, utils.SUCCEEDS)
    invoice = InvoiceFactory(account=account)
    call_command("settle_invoices", stdout=io.StringIO())
    # A second charge for the same invoice reached the gateway, behind an attempt we never resolved.
    PaymentAttempt.objects.create(
        invoice=invoice,
        sequence=2,
        method=method,
        position=1,
        amount_minor=invoice.amount_minor,
        currency=invoice.currency,
        status="unknown",
        idempotency_key="settle-extra",
    )
    from payments.gateways import get_gateway

    get_gateway().charge(
        customer="",
        method_token=method.token,
        amount_minor=invoice.amount_minor,
        currency="USD",
        idempotency_key="settle-extra",
        metadata={},
        timeout=5,
    )
    # And an attempt we believe succeeded that the gateway never saw.
    PaymentAttempt.objects.create(
        invoice=InvoiceFactory(account=account),
        sequence=1,
        method=method,
        position=1,
        amount_minor=5,
        currency="USD",
        status="succeeded",
        idempotency_key="never-sent",
    )
    out = io.StringIO()
    with pytest.raises(SystemExit):
        call_command("reconcile_payments", stdout=out)
    text = out.getvalue()
    assert f"charged_twice: invoice {invoice.number}" in text
    # Its attempt is unresolved: listed apart as awaiting recovery, while the double charge is real.
    assert "awaiting_recovery: invoice" in text and "settle-extra" in text
    assert "recorded_not_charged" in text and "never-sent" in text


def test_progress_bar_on_a_terminal():
    account = AccountFactory()
    utils.add_card(account, utils.SUCCEEDS)
    InvoiceFactory(account=account)
    manage_py = str(utils.ROOT / "manage.py")
    script = (
        "import os, pty, sys\n"
        "pid, fd = pty.fork()\n"
        "if pid == 0:\n"
        f"    os.execv(sys.executable, [sys.executable, {manage_py!r}, 'settle_invoices'])\n"
        "out = b''\n"
        "while True:\n"
        "    try:\n"
        "        chunk = os.read(fd, 4096)\n"
        "    except OSError:\n"
        "        break\n"
        "    if not chunk:\n"
        "        break\n"
        "    out += chunk\n"
        "os.waitpid(pid, 0)\n"
        "sys.stdout.write(out.decode(errors='replace'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=utils.command_env(), capture_output=True, text=True, timeout=120
    )
    assert "Settling" in result.stdout and "1/1" in result.stdout
    assert "paid by primary" in result.stdout
    connections.close_all()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_finishes_invoices_in_flight_records_them_and_exits(signum):
    accounts = [AccountFactory() for _ in range(4)]
    for account in accounts:
        utils.add_card(account, utils.SUCCEEDS)
        for _ in range(10):
            InvoiceFactory(account=account)
    connections.close_all()
    proc = utils.manage(
        "settle_invoices", "--json", "--concurrency", "2", env=utils.command_env(SANDBOX_LATENCY_MS=150)
    )
    deadline = time.monotonic() + 60
    while not PaymentAttempt.objects.exists():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.02)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)

    assert proc.returncode == 0, err
    counts = json.loads(out)
    run = SettlementRun.objects.get()
    assert run.status == SettlementRun.Status.INTERRUPTED and run.finished_at
    assert 0 < counts["paid"] < 40, "stopped early, after finishing what was in flight"
    assert counts["paid"] == Invoice.objects.filter(status="paid").count()
    assert not PaymentAttempt.objects.filter(status__in=PaymentAttempt.UNRESOLVED).exists()
    # What it had claimed but not started is given back at once, not held until the lease expires.
    assert not Invoice.objects.filter(status="open").exclude(lease_token="").exists()
    call_command("settle_invoices", stdout=io.StringIO())
    assert Invoice.objects.filter(status="paid").count() == 40


def test_json_output_is_only_the_json_object_with_the_console_email_backend():
    """The console email backend prints each email to standard output; in --json mode the run's
    emails go to standard error and standard output holds the JSON object alone."""
    account = AccountFactory()
    utils.add_card(account, utils.GENERIC_DECLINE)
    utils.add_card(account, utils.SUCCEEDS)  # the backup pays: a "backup was charged" email
    InvoiceFactory(account=account)
    connections.close_all()

    proc = utils.manage("settle_invoices", "--json", env=utils.command_env(EMAIL_URL="consolemail://"))
    out, err = proc.communicate(timeout=120)

    assert proc.returncode == 0, err
    counts = json.loads(out)
    assert counts["paid_by_backup"] == 1
    assert "Subject:" in err, "the email was sent, to standard error"
    assert SentEmail.objects.filter(account=account, status=SentEmail.Status.SENT).exists()
