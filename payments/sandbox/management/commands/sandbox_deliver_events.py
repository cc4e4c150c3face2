"""Post the sandbox's signed webhook events: the outcome of every bank debit that has cleared or failed
and is not announced yet, to SANDBOX_WEBHOOK_URL. Meant to run every minute or so, as a processor
sends its events; a re-run (or two at once) is safe, since the receiver stores each event once.

Exit status: 0 when every event was delivered, 1 when any was refused or got no answer (it is posted
again by the next run), 2 for bad arguments or configuration.
"""

import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core.commands import stop_on_signal
from payments.sandbox.events import events_deliver


class Command(BaseCommand):
    help = "Deliver the sandbox gateway's signed webhook events for bank debits that have cleared or failed."

    def add_arguments(self, parser):
        parser.add_argument("--url", help="Post to this URL instead of SANDBOX_WEBHOOK_URL.")
        parser.add_argument("--limit", type=int, help="Deliver at most this many events.")
        parser.add_argument("--json", action="store_true", help="Print one JSON object with the deliveries.")

    def handle(self, *args, **options):
        url = options["url"] or settings.SANDBOX_WEBHOOK_URL
        if not url.startswith(("http://", "https://")):
            raise CommandError(f"--url must be an http:// or https:// URL, not {url!r}.", returncode=2)
        if options["limit"] is not None and options["limit"] < 1:
            raise CommandError("--limit must be at least 1.", returncode=2)
        with stop_on_signal(self.stderr, after="this event") as stop:
            deliveries = list(events_deliver(url=url, limit=options["limit"], stop=stop))
        failed = [d for d in deliveries if not d.delivered]
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "url": url,
                        "considered": len(deliveries),
                        "delivered": len(deliveries) - len(failed),
                        "failed": len(failed),
                        "events": [
                            {
                                "event": d.event_id,
                                "type": d.type,
                                "charge": d.reference,
                                "status": d.status_code,
                                "error": d.error,
                            }
                            for d in deliveries
                        ],
                    }
                )
            )
        elif options["verbosity"] >= 1:
            for d in failed:
                self.stdout.write(f"  {d.event_id or '-'} for {d.reference}: {d.status_code or d.error}")
            self.stdout.write(
                f"Delivered {len(deliveries) - len(failed)} event(s) to {url}; {len(failed)} failed."
            )
        if failed:
            raise CommandError(
                f"{len(failed)} event(s) were not delivered; the next run posts them again.", returncode=1
            )
