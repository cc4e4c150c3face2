"""List every difference between our payment attempts and the gateway's ledger; exit 1 if any."""

import json
import sys

from django.core.management.base import BaseCommand

from invoices.reconciliation import differences
from payments.gateways import get_gateway


class Command(BaseCommand):
    help = "Compare recorded payment attempts with the gateway's own records and list every difference."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print the differences as one JSON object.")

    def handle(self, *args, **options):
        found = list(differences(gateway=get_gateway()))
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
