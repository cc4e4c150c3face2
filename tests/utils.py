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
        account=account, actor=actor, tokenized=tokenized, gateway=gateway.name, add_to_order=in_order
    )


def add_ach(account, account_number="000123456789", *, in_order=True):
    gateway = get_gateway()
    tokenized = gateway.tokenize_ach_debit(
        routing_number="110000000", account_number=account_number, account_holder="Test Holder"
    )
    return payment_method_create(
        account=account, actor=None, tokenized=tokenized, gateway=gateway.name, add_to_order=in_order
    )


def add_sepa(account, iban="DE89370400440532013000", *, in_order=True):
    gateway = get_gateway()
    tokenized = gateway.tokenize_sepa_debit(iban=iban, account_holder="Test Holder")
    return payment_method_create(
        account=account, actor=None, tokenized=tokenized, gateway=gateway.name, add_to_order=in_order
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
