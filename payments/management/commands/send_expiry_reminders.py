"""Email each account's owners and billing members about methods in the charge order that expire
within 30 days, and again within 7. Meant to run daily; a re-run (or two at once) sends nothing twice.

Exit status: 0 when the run completed, 1 when any reminder hit an unexpected error (the others are
still sent), 2 for bad arguments or configuration.
"""

import datetime
import json
import logging
from collections import Counter

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.models import Account
from core.commands import stop_on_signal
from payments.expiry import ExpiryReminder, Outcome, expiry_reminder_send, expiry_reminders_due
from payments.ranks import position_label

logger = logging.getLogger(__name__)


def parse_as_of(value: str) -> datetime.date:
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--as-of must be an ISO 8601 date, not {value!r}.", returncode=2) from None
    if parsed.tzinfo is not None:
        return timezone.localdate(parsed)
    return parsed.date()


def _describe(reminder: ExpiryReminder) -> dict:
    return {
        "account": reminder.account.pk,
        "method": reminder.method.pk,
        "label": reminder.method.label,
        "position": reminder.position,
        "expires_on": reminder.expires_on.isoformat(),
        "days_left": reminder.days_left,
        "threshold": reminder.threshold,
        "instead": reminder.fallback[1].label if reminder.fallback else None,
    }


class Command(BaseCommand):
    help = (
        "Email owners and billing members about payment methods in the charge order that expire within "
        "30 days, and again within 7 days."
    )

    def add_arguments(self, parser):
        parser.add_argument("--as-of", help="Remind as if it were this ISO 8601 date (default: today).")
        parser.add_argument("--account", type=int, help="Only this account (account id).")
        parser.add_argument("--dry-run", action="store_true", help="Show what would be sent; send nothing.")
        parser.add_argument("--json", action="store_true", help="Print one JSON object with the counts.")

    def handle(self, *args, **options):
        today = parse_as_of(options["as_of"]) if options["as_of"] else timezone.localdate()
        account_id = options["account"]
        if account_id is not None and not Account.objects.filter(pk=account_id).exists():
            raise CommandError(f"There is no account {account_id}.", returncode=2)

        reminders = expiry_reminders_due(today=today, account_id=account_id)
        if options["dry_run"]:
            return self._report(today, reminders, outcomes={}, counts=Counter(), options=options)

        counts, outcomes = Counter(), {}
        with stop_on_signal(self.stderr, after="this reminder") as stop:
            for reminder in reminders:
                if stop.is_set():
                    break
                try:
                    outcome = expiry_reminder_send(
                        account_id=reminder.account.pk, method_id=reminder.method.pk, today=today
                    )
                except Exception:
                    logger.exception("Expiry reminder for payment method %s failed", reminder.method.pk)
                    outcome = "error"
                    counts["errors"] += 1
                else:
                    counts[outcome] += 1
                outcomes[reminder.event_key] = str(outcome)
        self._report(today, reminders, outcomes=outcomes, counts=counts, options=options)
        if counts["errors"]:
            raise CommandError(
                f"{counts['errors']} reminder(s) failed with an unexpected error; see the log.", returncode=1
            )

    def _report(self, today, reminders, *, outcomes, counts, options):
        dry_run = options["dry_run"]
        if options["json"]:
            data = {
                "as_of": today.isoformat(),
                "dry_run": dry_run,
                "considered": len(reminders),
                **{str(outcome): counts[outcome] for outcome in Outcome},
                "errors": counts["errors"],
                "reminders": [
                    {**_describe(r), "outcome": outcomes.get(r.event_key, "would_send")} for r in reminders
                ],
            }
            self.stdout.write(json.dumps(data))
            return
        if options["verbosity"] < 1:
            return
        heading = "Dry run: nothing is sent. " if dry_run else ""
        self.stdout.write(f"{heading}Expiry reminders as of {today.isoformat()}: {len(reminders)} due.")
        for r in reminders:
            instead = r.fallback[1].label if r.fallback else "nothing"
            self.stdout.write(
                f"  {r.account.name}: {r.method.label} ({position_label(r.position)}) expires "
                f"{r.expires_on.isoformat()}, {r.days_left} day(s) left, {r.threshold}-day reminder; "
                f"instead: {instead} -> {outcomes.get(r.event_key, 'would send')}"
            )
        if not dry_run:
            self.stdout.write(
                ", ".join(f"{key.replace('_', ' ')}: {counts[key]}" for key in [*map(str, Outcome), "errors"])
            )
