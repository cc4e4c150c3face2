"""Charge every due invoice down its charge order. Meant for cron; any number may run at once.

Exit status: 0 when the run completed (declines are normal results), 1 when any invoice hit an
unexpected error (the others still settle), 2 for bad arguments or configuration.
"""

import contextlib
import datetime
import json
import os
import signal
import sys
import threading

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from accounts.models import Account
from core.money import format_money
from invoices.settlement import Outcome, settlement_dry_run, settlement_run
from invoices.settlement.claim import due_queryset
from payments.gateways import get_gateway


def parse_as_of(value: str) -> datetime.datetime:
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(
            f"--as-of must be an ISO 8601 date or time, not {value!r}.", returncode=2
        ) from None
    return timezone.make_aware(parsed) if timezone.is_naive(parsed) else parsed


@contextlib.contextmanager
def _stdout_to_stderr():
    """For its duration, whatever is written to standard output goes to standard error instead."""
    # Emails are sent during the run (on commit, from the gateway threads too), and the console
    # email backend prints them to standard output. Rather than reconfigure one backend, the run's
    # standard output is diverted as a whole, at the descriptor as well as sys.stdout: that also
    # catches a backend or log handler that kept the original stream, a library's print and a
    # child process, so with --json nothing but the object printed after the run reaches it.
    original = sys.stdout
    original.flush()
    saved = None
    with contextlib.suppress(OSError, ValueError):  # no descriptor 1 or 2 (closed, or not a file)
        saved = os.dup(1)
        os.dup2(2, 1)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        original.flush()
        if saved is not None:
            os.dup2(saved, 1)
            os.close(saved)


class Command(BaseCommand):
    help = "Charge due invoices to each account's primary method, falling back to backups in order."
    # Scheduled every few minutes, often in several copies: it starts at once. The web processes
    # and `manage.py check --deploy` run the system checks.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--as-of", help="Settle as if it were this ISO 8601 time (default: now).")
        parser.add_argument(
            "--dry-run", action="store_true", help="Show what would be tried; change nothing."
        )
        parser.add_argument("--limit", type=int, help="Settle at most this many invoices.")
        parser.add_argument("--account", type=int, help="Only this account's invoices (account id).")
        parser.add_argument("--concurrency", type=int, default=1, help="Invoices (gateway calls) in flight.")
        parser.add_argument(
            "--queue-emails",
            action="store_true",
            help="Leave the run's emails queued for send_notifications instead of sending them as it goes.",
        )
        parser.add_argument("--json", action="store_true", help="Print one JSON object with the counts.")

    def handle(self, *args, **options):
        as_of = parse_as_of(options["as_of"]) if options["as_of"] else timezone.now()
        limit, account_id, concurrency = options["limit"], options["account"], options["concurrency"]
        if limit is not None and limit < 1:
            raise CommandError("--limit must be at least 1.", returncode=2)
        if not 1 <= concurrency <= 512:
            raise CommandError("--concurrency must be between 1 and 512.", returncode=2)
        if account_id is not None and not Account.objects.filter(pk=account_id).exists():
            raise CommandError(f"There is no account {account_id}.", returncode=2)
        try:
            get_gateway()
        except Exception as exc:
            raise CommandError(f"The payment gateway cannot be loaded: {exc}", returncode=2) from exc

        if options["dry_run"]:
            return self._dry_run(as_of=as_of, limit=limit, account_id=account_id, as_json=options["json"])

        verbosity = options["verbosity"]
        console = Console(file=self.stdout._out, highlight=False)
        show_progress = not options["json"] and self.stdout.isatty() and verbosity >= 1
        stop = threading.Event()
        self._install_signal_handlers(stop)

        progress = None
        task = None
        if show_progress:
            total = due_queryset(as_of=as_of, account_id=account_id).count()
            total = min(total, limit) if limit else total
            progress = Progress(
                TextColumn("Settling"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
            )
            task = progress.add_task("settle", total=total)
            progress.start()
        lock = threading.Lock()

        def on_result(result):
            with lock:
                if progress is not None:
                    progress.advance(task)
                if verbosity >= 2 and not options["json"]:
                    line = f"{result.number}: {result.outcome.value}"
                    if result.message:
                        line += f" — {result.message}"
                    (progress.console if progress else console).print(line)

        try:
            with _stdout_to_stderr() if options["json"] else contextlib.nullcontext():
                summary = settlement_run(
                    as_of=as_of,
                    limit=limit,
                    account_id=account_id,
                    concurrency=concurrency,
                    stop=stop,
                    on_result=on_result,
                    options={k: options[k] for k in ("as_of", "limit", "account", "concurrency")},
                    send_emails=not options["queue_emails"],
                )
        finally:
            if progress is not None:
                progress.stop()

        data = summary.as_dict()
        if options["json"]:
            self.stdout.write(json.dumps(data))
        elif verbosity >= 1:
            table = Table(
                title=f"Settlement run {summary.run.pk}" + (" (interrupted)" if summary.interrupted else "")
            )
            table.add_column("")
            table.add_column("invoices", justify="right")
            for key, value in data.items():
                table.add_row(key.replace("_", " "), f"{value:.3f}" if key == "duration_s" else str(value))
            console.print(table)
        if data["errors"]:
            sys.exit(1)

    def _install_signal_handlers(self, stop: threading.Event) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def handler(signum, frame):
            # Finish the invoices in flight, record them, give back the rest, exit.
            stop.set()
            self.stderr.write(f"Received {signal.Signals(signum).name}: finishing invoices in flight.")

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def _dry_run(self, *, as_of, limit, account_id, as_json):
        items = settlement_dry_run(as_of=as_of, limit=limit, account_id=account_id)
        if as_json:
            self.stdout.write(
                json.dumps(
                    {
                        "dry_run": True,
                        "considered": len(items),
                        "invoices": [
                            {
                                "number": item.invoice.number,
                                "unresolved": [a.idempotency_key for a in item.unresolved],
                                "would_try": [step.method.label for step in item.plan if step.will_try],
                                "would_skip": [
                                    {"method": step.method.label, "reason": step.skip_reason}
                                    for step in item.plan
                                    if not step.will_try
                                ],
                            }
                            for item in items
                        ],
                    }
                )
            )
            return
        self.stdout.write(
            f"Dry run as of {as_of.isoformat()}: {len(items)} invoice(s) due. Nothing is charged."
        )
        for item in items:
            invoice = item.invoice
            amount = format_money(invoice.amount_minor, invoice.currency)
            self.stdout.write(f"\n{invoice.number} ({invoice.account.name}, {amount})")
            for attempt in item.unresolved:
                self.stdout.write(f"  resolve first: attempt {attempt.idempotency_key} ({attempt.status})")
            if not item.plan:
                self.stdout.write(f"  no method in the charge order -> {Outcome.PAST_DUE.value}")
            for step in item.plan:
                if step.will_try:
                    self.stdout.write(f"  try   {step.position_label}: {step.method.label}")
                else:
                    self.stdout.write(
                        f"  skip  {step.position_label}: {step.method.label} ({step.skip_reason_label})"
                    )
