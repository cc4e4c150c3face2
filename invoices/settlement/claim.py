"""Claiming invoices: a short transaction that takes row locks (skipping rows another worker
holds) and records a lease, so any number of workers never settle the same invoice together."""

import datetime
import os
import secrets
import socket

from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from accounts.models import Account
from invoices.models import Invoice, PaymentAttempt

from .items import Lease
from .keeper import lease_until


def new_lease(*, owner: str = "") -> Lease:
    return Lease(token=secrets.token_hex(16), owner=owner or f"{socket.gethostname()}:{os.getpid()}")


def _lease_free(now: datetime.datetime) -> Q:
    return Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now)


def _claimable(*, as_of: datetime.datetime, account_id: int | None, now: datetime.datetime):
    unresolved = Exists(
        PaymentAttempt.objects.filter(invoice=OuterRef("pk"), status__in=PaymentAttempt.UNRESOLVED)
    )
    queryset = (
        Invoice.objects.filter(status__in=Invoice.COLLECTABLE)
        .filter(_lease_free(now))
        .filter(Q(due_on__lte=timezone.localdate(as_of)) | unresolved)
    )
    if account_id is not None:
        queryset = queryset.filter(account_id=account_id)
    return queryset


def due_queryset(*, as_of: datetime.datetime, account_id: int | None = None, now=None):
    """Collectable invoices whose next attempt has come and whose lease is free: those due by
    ``as_of``, and any with an attempt still unresolved (reconciled before anything is charged)."""
    return (
        _claimable(as_of=as_of, account_id=account_id, now=now or timezone.now())
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=as_of))
        .order_by("next_attempt_at", "pk")
    )


def claim_due(
    *, lease: Lease, as_of: datetime.datetime, limit: int, account_id: int | None = None
) -> list[Invoice]:
    """Lease up to ``limit`` due invoices, oldest first, skipping those another worker holds.

    Two reads, each walking the due-scan index in its order so that a claim costs the same with
    ten or a million invoices due (one read with ``next_attempt_at IS NULL OR … <= as_of`` would
    sort every due invoice, every time): scheduled ones first, then any never scheduled.
    """
    now = timezone.now()
    if connection.vendor == "postgresql":
        return _claim_in_one_statement(lease=lease, as_of=as_of, limit=limit, account_id=account_id, now=now)
    with transaction.atomic():
        due = _claimable(as_of=as_of, account_id=account_id, now=now).select_for_update(
            skip_locked=True, of=("self",)
        )
        scheduled = due.filter(next_attempt_at__lte=as_of).order_by("next_attempt_at", "pk")
        ids = list(scheduled.values_list("pk", flat=True)[:limit])
        if len(ids) < limit:
            unscheduled = due.filter(next_attempt_at__isnull=True).order_by("pk")
            ids += unscheduled.values_list("pk", flat=True)[: limit - len(ids)]
        if ids:
            Invoice.objects.filter(pk__in=ids).update(
                lease_token=lease.token, lease_owner=lease.owner, lease_expires_at=lease_until(now)
            )
    if not ids:
        return []
    return list(
        Invoice.objects.filter(pk__in=ids, lease_token=lease.token)
        .select_related("account")
        .order_by("next_attempt_at", "pk")
    )


def _claim_in_one_statement(
    *, lease: Lease, as_of: datetime.datetime, limit: int, account_id: int | None, now: datetime.datetime
) -> list[Invoice]:
    """PostgreSQL: ``UPDATE … FROM (SELECT … FOR UPDATE SKIP LOCKED) RETURNING``, one statement
    (its own transaction) per read of ``claim_due``: lock, lease and read back in one round trip."""
    due = _claimable(as_of=as_of, account_id=account_id, now=now).select_for_update(
        skip_locked=True, of=("self",)
    )
    claimed = _lease_returning(
        due.filter(next_attempt_at__lte=as_of).order_by("next_attempt_at", "pk"),
        lease=lease,
        limit=limit,
        now=now,
    )
    if len(claimed) < limit:
        unscheduled = due.filter(next_attempt_at__isnull=True).order_by("pk")
        claimed += _lease_returning(unscheduled, lease=lease, limit=limit - len(claimed), now=now)
    accounts = Account.objects.in_bulk({invoice.account_id for invoice in claimed})
    for invoice in claimed:
        invoice.account = accounts[invoice.account_id]
    return claimed


def _lease_returning(queryset, *, lease: Lease, limit: int, now: datetime.datetime) -> list[Invoice]:
    with transaction.atomic():  # the one statement's own transaction
        return _lease_returning_in_transaction(queryset, lease=lease, limit=limit, now=now)


def _lease_returning_in_transaction(
    queryset, *, lease: Lease, limit: int, now: datetime.datetime
) -> list[Invoice]:
    select, params = queryset.values("pk")[:limit].query.sql_with_params()
    meta = Invoice._meta
    quote = connection.ops.quote_name
    fields = meta.concrete_fields
    table = quote(meta.db_table)
    returning = ", ".join(f"claimed.{quote(field.column)}" for field in fields)
    sql = (
        f"UPDATE {table} AS claimed SET {quote('lease_token')} = %s, {quote('lease_owner')} = %s, "  # noqa: S608
        f"{quote('lease_expires_at')} = %s FROM ({select}) AS due (due_id) "
        f"WHERE claimed.{quote(meta.pk.column)} = due.due_id RETURNING {returning}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [lease.token, lease.owner, lease_until(now), *params])
        rows = cursor.fetchall()
    # The conversions a query of these columns applies (time zones, for one), without a query.
    converters = []
    for field in fields:
        column = field.get_col(meta.db_table)
        converters.append((column, column.get_db_converters(connection)))
    names = [field.attname for field in fields]
    invoices = []
    for row in rows:
        values = []
        for (column, funcs), value in zip(converters, row, strict=True):
            for func in funcs:
                value = func(value, column, connection)
            values.append(value)
        invoices.append(Invoice.from_db(connection.alias, names, values))
    # The order the scan chose; RETURNING keeps none.
    invoices.sort(key=lambda invoice: (invoice.next_attempt_at is None, invoice.next_attempt_at, invoice.pk))
    return invoices


def claim_one(
    *, invoice_id: int, lease: Lease, until: datetime.datetime | None = None, reclaim_owner: str = ""
) -> Invoice | None:
    """Claim one collectable invoice now (Pay now, Retry now), for a settlement lease or until
    ``until``; None if another worker holds it. A lease held under ``reclaim_owner`` is taken over
    (the same holder asking again)."""
    now = timezone.now()
    free = _lease_free(now) | (Q(lease_owner=reclaim_owner) if reclaim_owner else Q(pk__in=[]))
    with transaction.atomic():
        locked = (
            Invoice.objects.filter(pk=invoice_id, status__in=Invoice.COLLECTABLE)
            .filter(free)
            .select_for_update(skip_locked=True, of=("self",))
            .values_list("pk", flat=True)
        )
        if not list(locked):
            return None
        Invoice.objects.filter(pk=invoice_id).update(
            lease_token=lease.token, lease_owner=lease.owner, lease_expires_at=until or lease_until(now)
        )
    return Invoice.objects.select_related("account").get(pk=invoice_id)


def release(*, invoice_ids, lease: Lease | None = None, owner: str = "") -> int:
    """Give back invoices claimed but not worked on (a run told to stop), by the lease's token or,
    for a hold that outlives its request (the authenticate page's), by its owner."""
    held = Q(lease_token=lease.token) if lease is not None else Q(lease_owner=owner)
    return Invoice.objects.filter(held, pk__in=list(invoice_ids)).update(
        lease_token="", lease_owner="", lease_expires_at=None
    )
