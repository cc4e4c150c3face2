"""Helpers for tests that drive real settlement through the sandbox gateway."""

import os
import subprocess
import sys
from pathlib import Path

from django.db import connections

from payments.gateways import get_gateway
from payments.sandbox.models import SandboxCharge
from payments.services import payment_method_create

ROOT = Path(__file__).resolve().parent.parent

# Tests build any charge order they need, the same card twice included: the console and the API
# refuse a duplicate (tests/test_duplicate_methods.py), these helpers allow it.
SUCCEEDS = "4242424242424242"
GENERIC_DECLINE = "4000000000000002"
INSUFFICIENT_FUNDS = "4000000000009995"
LOST_CARD = "4000000000009987"
REPLY_LOST = "4000000000008013"
TIMEOUT_BEFORE_CHARGE = "4000000000008021"


def add_card(account, number=SUCCEEDS, *, exp_month=12, exp_year=2040, in_order=True, actor=None):
    gateway = get_gateway()
    tokenized = gateway.tokenize_card(number=number, exp_month=exp_month, exp_year=exp_year, cvc="123")
    return payment_method_create(
        account=account,
        actor=actor,
        tokenized=tokenized,
        gateway=gateway.name,
        add_to_order=in_order,
        allow_duplicate=True,
    )


def add_ach(account, account_number="000123456789", *, in_order=True):
    gateway = get_gateway()
    tokenized = gateway.tokenize_ach_debit(
        routing_number="110000000", account_number=account_number, account_holder="Test Holder"
    )
    return payment_method_create(
        account=account,
        actor=None,
        tokenized=tokenized,
        gateway=gateway.name,
        add_to_order=in_order,
        allow_duplicate=True,
    )


def add_sepa(account, iban="DE89370400440532013000", *, in_order=True):
    gateway = get_gateway()
    tokenized = gateway.tokenize_sepa_debit(iban=iban, account_holder="Test Holder")
    return payment_method_create(
        account=account,
        actor=None,
        tokenized=tokenized,
        gateway=gateway.name,
        add_to_order=in_order,
        allow_duplicate=True,
    )


def successful_charges(**filters):
    return SandboxCharge.objects.filter(status=SandboxCharge.Status.SUCCEEDED, **filters)


def _url(alias: str) -> str:
    s = connections[alias].settings_dict
    if connections[alias].vendor == "postgresql":
        return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"
    return f"sqlite:///{s['NAME']}"


def command_env(**extra) -> dict:
    """The environment for a manage.py subprocess that works on this test's databases."""
    env = {
        **os.environ,
        "DATABASE_URL": _url("default"),
        "SANDBOX_DATABASE_URL": _url("sandbox"),
        "DEBUG": "0",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "test-only-secret-key"),
    }
    env.update({k: str(v) for k, v in extra.items()})
    return env


def manage(*args, env=None, **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=env or command_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


# Outcome mix used by the concurrency tests: (primary card, backup card, invoice paid?).
MIX = [
    *[(SUCCEEDS, SUCCEEDS, True)] * 7,
    *[(GENERIC_DECLINE, SUCCEEDS, True)] * 2,
    (GENERIC_DECLINE, INSUFFICIENT_FUNDS, False),
]


def seed_invoices(*, accounts: int, invoices_per_account: int) -> dict[int, bool]:
    """Accounts with a primary and a backup, and due invoices; returns {invoice id: should be paid}."""
    import datetime

    from django.utils import timezone

    from invoices.models import Invoice
    from tests.factories import AccountFactory

    expected = {}
    now = timezone.now()
    today = timezone.localdate()
    invoices = []
    for n in range(accounts):
        primary, backup, _ = MIX[n % len(MIX)]
        account = AccountFactory()
        add_card(account, primary)
        add_card(account, backup)
        for i in range(invoices_per_account):
            invoices.append(
                Invoice(
                    account=account,
                    number=f"C-{n:05d}-{i:03d}",
                    currency="USD",
                    amount_minor=1000 + i,
                    issued_on=today - datetime.timedelta(days=10),
                    due_on=today,
                    next_attempt_at=now,
                )
            )
    for invoice in Invoice.objects.bulk_create(invoices, batch_size=1000):
        expected[invoice.pk] = MIX[int(invoice.number[2:7]) % len(MIX)][2]
    return expected


def assert_settled_exactly_once(expected: dict[int, bool]) -> None:
    """The sandbox ledger holds exactly one successful charge per paid invoice, none for the rest,
    and every invoice ended where its methods say it should."""
    from collections import Counter

    from invoices.models import Invoice, PaymentAttempt

    key_to_invoice = dict(
        PaymentAttempt.objects.exclude(idempotency_key=None).values_list("idempotency_key", "invoice_id")
    )
    charged = Counter()
    for key in successful_charges().values_list("idempotency_key", flat=True):
        assert key in key_to_invoice, f"the gateway charged {key}, which no attempt of ours names"
        charged[key_to_invoice[key]] += 1
    assert max(charged.values(), default=0) <= 1, "an invoice was charged twice"
    statuses = dict(Invoice.objects.values_list("pk", "status"))
    paid_keys = dict(
        Invoice.objects.filter(status="paid").values_list("pk", "paid_by_attempt__idempotency_key")
    )
    for invoice_id, should_pay in expected.items():
        if should_pay:
            assert statuses[invoice_id] == "paid", f"invoice {invoice_id} is {statuses[invoice_id]}"
            assert charged[invoice_id] == 1
            assert key_to_invoice[paid_keys[invoice_id]] == invoice_id
        else:
            assert statuses[invoice_id] == "past_due", f"invoice {invoice_id} is {statuses[invoice_id]}"
            assert charged[invoice_id] == 0
    assert not PaymentAttempt.objects.filter(status__in=PaymentAttempt.UNRESOLVED).exists()


def support_group_ensure():
    """The Support group and its permissions, as accounts 0002 makes them: a transactional test
    before this one may have flushed them (serialized rollback restores them only where it ran)."""
    import importlib

    from django.apps import apps

    return importlib.import_module("accounts.migrations.0002_support_group").support_group_sync(
        apps, "default"
    )
