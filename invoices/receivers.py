"""How invoices react to what the apps below announce (connected in InvoicesConfig.ready)."""

from django.utils import timezone

from .models import Invoice


def past_due_invoices_retry_now(sender, *, account_id: int, **kwargs) -> int:
    """A customer who fixed their methods should not wait for the next round of the schedule: the
    account's past-due invoices are eligible at the next run."""
    return Invoice.objects.filter(account_id=account_id, status=Invoice.Status.PAST_DUE).update(
        next_attempt_at=timezone.now()
    )
