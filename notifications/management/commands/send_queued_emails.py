"""Send the emails still queued: receipts (whose PDF is made here, not in the settlement run that
paid the invoice), and any email whose sender stopped before sending it. Meant to run every minute;
two at once, or one beside a settlement run, never send an email twice.

Exit status: 0 when every email was sent, 1 when any failed (its error is kept on it, in admin).
"""

from django.core.management.base import BaseCommand, CommandError

from core.commands import stop_on_signal
from notifications.services import queued_emails_deliver


class Command(BaseCommand):
    help = "Send the queued emails (receipts, and any left unsent), each once."

    def handle(self, *args, **options):
        with stop_on_signal(self.stderr, after="this batch") as stop:
            sent, failed = queued_emails_deliver(stop=stop)
        self.stdout.write(f"Sent {sent} emails; {failed} failed.")
        if failed:
            raise CommandError(f"{failed} emails could not be sent: see Sent emails in admin.", returncode=1)
