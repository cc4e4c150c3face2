"""List every difference between our payment attempts and the gateway's records; exit 1 if any.

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
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "differences": [
                            {
                                "kind": d.kind,
                                "invoice": d.invoice_number,
                                "keys": list(d.idempotency_keys),
                                "detail": d.detail,
                            }
                            for d in found
                        ]
                    }
                )
            )
        elif found:
            for d in found:
                self.stdout.write(
                    f"{d.kind}: invoice {d.invoice_number} [{', '.join(d.idempotency_keys)}] {d.detail}"
                )
            self.stdout.write(f"{len(found)} difference(s).")
        else:
            self.stdout.write("No differences: every charge at the gateway matches our records.")
        if found:
            sys.exit(1)
