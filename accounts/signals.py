"""What accounts announces to the apps above it, which it may not import.

Each signal is sent once the transaction that made the change has committed, never from inside it:
the change and its audit event are what must hold together; the emails follow from the event.
"""

import django.dispatch
from django.db import transaction

from .models import AuditEvent, Invitation

# Who may act for an account, or who receives its billing email, changed: a member was invited,
# joined, changed role or was removed, or the billing contacts changed. Sent with ``event`` (the
# AuditEvent), ``request`` (or None) and ``notify_also``: users concerned who are not owners (any
# more), such as a demoted or removed member, who must hear of it too.
account_access_changed = django.dispatch.Signal()

# An invitation was created and its email must go out. Sent with ``invitation`` and ``language``
# (the inviter's, which the email is written in).
invitation_created = django.dispatch.Signal()


def account_access_changed_on_commit(*, event: AuditEvent, request=None, notify_also=()) -> None:
    notify_also = list(notify_also)
    transaction.on_commit(
        lambda: account_access_changed.send(
            sender=AuditEvent, event=event, request=request, notify_also=notify_also
        ),
        robust=True,
    )


def invitation_created_on_commit(*, invitation: Invitation, language: str) -> None:
    transaction.on_commit(
        lambda: invitation_created.send(sender=Invitation, invitation=invitation, language=language),
        robust=True,
    )
