"""Schemathesis, every check on, against a live server with two accounts that must not see each other.

It logs in through POST /api/auth/token/ as each identity (and again after a revoked token), fuzzes
every operation of /api/schema/ (examples, coverage, fuzzing and stateful phases) and fails on any
finding: a 5xx, a response outside the schema, an undocumented status, an ignored credential, one
account reading the other's object …
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from payments.services import charge_order_set, payment_method_add_card, payment_method_add_sepa_debit
from tests.factories import (
    AccountFactory,
    InvoiceFactory,
    MembershipFactory,
    StaffUserFactory,
    UserFactory,
)

PASSWORD = "fuzz-Password-1"
ST = Path(sys.executable).with_name("st")

# Schema-valid requests that are still refused with a 400 by rules a schema cannot state: a wrong
# password, the card
# number's Luhn digit or an IBAN's checksum, a method id that is not the account's, an invoice
# number taken with other details, a due date before the issue date, the last owner's role.
# Everything else keeps the check's default: a valid request must never be a 400.
BUSINESS_RULE_400 = [
    "auth_token_create",
    "payment_methods_create",
    # With the sandbox gateway there is no SetupIntent to start: a 409.
    "payment_methods_setup",
    "charge_order_update",
    "invoices_pay",
    "staff_invoices_issue",
    # An address Django does not take for one, the last owner, an address that is a member's.
    "billing_contacts_update",
    "members_update",
    "members_destroy",
    "invitations_create",
    # A period that ends before it starts, or is longer than a report covers.
    "staff_recovery_report",
]
POSITIVE_STATUSES = ["2xx", "3xx", "400", "401", "403", "404", "409", "429"]


def _config(path: Path, *, auth_path: Path, wfc: str) -> Path:
    lines = [
        "workers = 1",
        "continue-on-failure = true",
        "request-timeout = 30",
        "[generation]",
        "max-examples = 25",
        "[auth.wfc]",
        f"path = {json.dumps(str(auth_path))}",
        wfc,
    ]
    for operation_id in BUSINESS_RULE_400:
        lines += [
            "[[operations]]",
            f'include-operation-id = "{operation_id}"',
            "[operations.checks.positive_data_acceptance]",
            f"expected-statuses = {json.dumps(POSITIVE_STATUSES)}",
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _login(name: str, username: str) -> dict:
    return {
        "name": name,
        "loginEndpointAuth": {
            "endpoint": "/api/auth/token/",
            "verb": "POST",
            "contentType": "application/json",
            "payloadUserPwd": {
                "username": username,
                "password": PASSWORD,
                "usernameField": "username",
                "passwordField": "password",
            },
            "token": {
                "extractFrom": "body",
                "extractSelector": "/token",
                "sendIn": "header",
                "sendName": "Authorization",
                "sendTemplate": "Token {token}",
            },
        },
    }


def _account_with_data(*, username: str, currency: str):
    account = AccountFactory(currency=currency)
    user = UserFactory(username=username, password=PASSWORD)
    MembershipFactory(account=account, user=user, role="owner")
    card = payment_method_add_card(
        account=account, actor=user, number="4242424242424242", exp_month=12, exp_year=2035, cvc="123"
    )
    declining = payment_method_add_card(
        account=account, actor=user, number="4000000000000002", exp_month=12, exp_year=2035, cvc="123"
    )
    sepa = payment_method_add_sepa_debit(
        account=account, actor=user, iban="DE89370400440532013000", account_holder="Jane Doe"
    )
    charge_order_set(account=account, actor=user, method_ids=[declining.pk, card.pk, sepa.pk])
    for _ in range(3):
        InvoiceFactory(account=account)
    return user


# Fresh sequences: the small ids the fuzzer tries first (1, 2 …) are the accounts, methods and
# invoices below, so it reaches them and not only 404s.
@pytest.mark.django_db(transaction=True, reset_sequences=True)
def test_schemathesis_finds_nothing(live_server, tmp_path, settings):
    # The add-method limit would turn most of the fuzzing of POST /api/payment-methods/ into 429s,
    # and the sign-in limit the logins; both have their own tests.
    settings.BILLING_ADD_METHOD_FAILURES_PER_HOUR = 1_000_000
    settings.SIGNIN_FAILURES_ALLOWED = 1_000_000
    _account_with_data(username="fuzz-owner-a", currency="USD")
    _account_with_data(username="fuzz-owner-b", currency="EUR")
    StaffUserFactory(username="fuzz-staff", password=PASSWORD)

    auth_path = tmp_path / "auth.json"
    auth_path.write_text(
        json.dumps(
            {
                "auth": [
                    _login("owner_a", "fuzz-owner-a"),
                    _login("owner_b", "fuzz-owner-b"),
                    _login("staff", "fuzz-staff"),
                ]
            }
        )
    )
    # The members' API with both owners as peers that must never see each other's objects; then the
    # operator's endpoints as staff.
    members = _run(
        live_server.url,
        _config(tmp_path / "members.toml", auth_path=auth_path, wfc='peers = ["owner_a", "owner_b"]'),
        "--exclude-tag",
        "staff",
    )
    staff = _run(
        live_server.url,
        _config(tmp_path / "staff.toml", auth_path=auth_path, wfc='user = "staff"'),
        "--include-tag",
        "staff",
    )
    print(members.stdout, staff.stdout)  # the runs' summaries, shown with -s or -rP
    assert members.returncode == 0, members.stdout + members.stderr
    assert staff.returncode == 0, staff.stdout + staff.stderr


def _run(base_url: str, config: Path, *selection: str) -> subprocess.CompletedProcess:
    command = [
        str(ST),
        "--config-file",
        str(config),
        "run",
        f"{base_url}/api/schema/",
        "--url",
        base_url,
        "--checks",
        "all",
        *selection,
        "--seed",
        os.environ.get("SCHEMATHESIS_SEED", "20261126"),
        "--generation-database",
        "none",
        "--no-color",
    ]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=600, cwd=config.parent, check=False
    )
