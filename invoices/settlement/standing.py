"""An account's standing follows its invoices': suspended when one turns uncollectible, past due
with one past due, restored by a later payment. Applied by a settlement step and by resolving an
attempt, in their transactions."""

from accounts.models import Account
from accounts.services import account_set_status
from invoices import transitions
from invoices.models import Invoice
from invoices.transitions import AccountStanding
from notifications.services import notification_queue_many

from . import emails


def accounts_follow(standings: dict[int, list[tuple[str, Invoice]]]) -> None:
    """Each account follows its invoices (see ``transitions.account_status_after``), in the
    caller's transaction; ``standings`` lists, per account, what its invoices' transitions meant."""
    # NO KEY: the foreign-key checks of rows naming the account (attempts, audit) need not wait.
    accounts = Account.objects.select_for_update(no_key=True).filter(pk__in=list(standings)).order_by("pk")
    for account in accounts:
        changes = standings[account.pk]
        status = transitions.account_status_after(
            account=account,
            standings={standing for standing, _invoice in changes},
            has_past_due=lambda account=account: Invoice.objects.filter(
                account=account, status=Invoice.Status.PAST_DUE
            ).exists(),
        )
        if status is None:
            continue
        if status == Account.Status.SUSPENDED:
            invoice = next(i for s, i in changes if s == AccountStanding.UNCOLLECTIBLE)
            reason = f"invoice {invoice.number} uncollectible"
        elif status == Account.Status.PAST_DUE:
            invoice = next(i for s, i in changes if s == AccountStanding.PAST_DUE)
            reason = f"invoice {invoice.number} past due"
        else:
            invoice, reason = None, "payment received"  # a later payment restores an account
        changed = account_set_status(
            account=account, status=status, actor_label=transitions.SETTLEMENT_ACTOR, reason=reason
        )
        if changed and status == Account.Status.SUSPENDED:
            notification_queue_many([emails.account_suspended(invoice=invoice)])
