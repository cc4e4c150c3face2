"""List every difference between our payment attempts and the gateway's records; exit 1 if any.

Charges whose attempt is merely in flight or awaiting recovery (the next settlement run resolves
them) are listed apart and do not make the exit code 1.

The gateway's charges are read page by page; ``--since`` limits the comparison to charges and
attempts from that moment on.
"""

import datetime
import json
import sys

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from invoices.reconciliation import PAGE_SIZE, differences
from payments.gateways import get_gateway


def moment(value: str) -> datetime.datetime:
    found = parse_datetime(value)
    if found is None and (day := parse_date(value)) is not None:
        found = datetime.datetime.combine(day, datetime.time.min)
    if found is None:
        raise ValueError(value)
    return found if timezone.is_aware(found) else timezone.make_aware(found)


class Command(BaseCommand):
    help = "Compare recorded payment attempts with the gateway's own records and list every difference."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print the differences as one JSON object.")
        parser.add_argument(
            "--since",
            type=moment,
            help="Compare only charges and attempts from then on (an ISO date or date and time).",
        )
        parser.add_argument(
            "--page-size", type=int, default=PAGE_SIZE, help="Charges read from the gateway per request."
        )

    def handle(self, *args, **options):
        if options["page_size"] < 1:
            raise CommandError("--page-size must be at least 1.", returncode=2)
        found = list(
            differences(gateway=get_gateway(), since=options["since"], page_size=options["page_size"])
        )
        real = [d for d in found if d.is_real]
        waiting = [d for d in found if not d.is_real]
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {"differences": [_as_json(d) for d in real], "in_flight": [_as_json(d) for d in waiting]}
                )
            )
        else:
            for d in real:
                self.stdout.write(_line(d))
            if waiting:
                self.stdout.write("In flight or awaiting recovery (the next settlement run resolves these):")
                for d in waiting:
                    self.stdout.write("  " + _line(d))
            if real:
                self.stdout.write(f"{len(real)} difference(s).")
            else:
                self.stdout.write("No differences: every charge at the gateway matches our records.")
        if real:
            sys.exit(1)


def _as_json(d) -> dict:
    return {"kind": d.kind, "invoice": d.invoice_number, "keys": list(d.idempotency_keys), "detail": d.detail}


def _line(d) -> str:
    return f"{d.kind}: invoice {d.invoice_number} [{', '.join(d.idempotency_keys)}] {d.detail}"
