"""Send the emails that are due: batched security notices whose window has closed, and any email
whose send on commit never happened (its process ended first). Meant for cron every minute; any
number may run at once, and none sends an email twice.

Exit status: 0 when the run completed (an email that could not be sent is marked failed, with its
error, in admin's Sent emails), 2 for bad arguments or configuration.
"""

import json

from django.core.management.base import BaseCommand

from core.commands import stop_on_signal
from notifications.services import notification_deliver_due


class Command(BaseCommand):
    help = "Send the queued emails that are due (batched security notices whose window has closed)."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print one JSON object with the count.")

    def handle(self, *args, **options):
        with stop_on_signal(self.stderr, after="these emails") as stop:
            sent = notification_deliver_due(stop=stop)
        if options["json"]:
            self.stdout.write(json.dumps({"sent": sent}))
        else:
            self.stdout.write(f"Sent {sent} email(s).")
