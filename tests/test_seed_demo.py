"""seed_demo: demo accounts that show every settlement outcome, and benchmark-sized data."""

import io
import json

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from accounts.models import Account, AuditEvent, Membership
from billing_console.demo import DEMO_ACCOUNTS
from billing_console.demo.bench import ALL_DECLINED, BACKUP_PAYS, DEFAULT_MIX, PRIMARY_PAYS, scenarios_deal
from invoices.models import Invoice, PaymentAttempt
from notifications.models import SentEmail
from payments.gateways import get_gateway
from payments.gateways.base import GatewayUnavailable
from payments.models import ChargeOrderEntry, PaymentMethod
from payments.sandbox.models import SandboxCharge, SandboxToken
from payments.services import charge_order_set, payment_method_remove

pytestmark = pytest.mark.django_db
COUNTED = (
    get_user_model(),
    Account,
    Membership,
    PaymentMethod,
    ChargeOrderEntry,
    Invoice,
    PaymentAttempt,
    AuditEvent,
    SentEmail,
    SandboxToken,
    SandboxCharge,
)


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.DEBUG = True


def seed(*args) -> str:
    out = io.StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in COUNTED}


def order_of(account_name: str) -> list[PaymentMethod]:
    entries = ChargeOrderEntry.objects.filter(account__name=account_name).select_related("method")
    return [entry.method for entry in entries.order_by("position")]


def test_refuses_with_debug_off(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match=r"DEBUG.*--force"):
        seed()
    assert not Account.objects.exists()
    assert not get_user_model().objects.exists()


def test_force_runs_with_debug_off(settings):
    settings.DEBUG = False
    assert "Demo data created" in seed("--force")
    assert Account.objects.count() == len(DEMO_ACCOUNTS)


def test_running_twice_changes_nothing_and_says_so():
    seed()
    before = counts()

    output = seed()

    assert counts() == before
    assert "nothing changed" in output


def test_a_rerun_keeps_what_the_customer_changed_in_the_console():
    seed()
    demo = get_user_model().objects.get(username="demo")
    account = Account.objects.get(name="Acme Cloud (demo)")
    primary, backup = order_of(account.name)
    charge_order_set(account=account, actor=demo, method_ids=[backup.pk])
    payment_method_remove(method=primary, actor=demo)
    before = counts()

    assert "nothing changed" in seed()

    assert counts() == before
    assert order_of(account.name) == [backup]


def test_a_run_cut_short_is_completed_by_the_next(monkeypatch):
    gateway = get_gateway()
    real = gateway.tokenize_card
    calls = []

    def flaky(**kwargs):
        calls.append(1)
        if len(calls) == 6:
            raise GatewayUnavailable("502 Bad Gateway")
        return real(**kwargs)

    monkeypatch.setattr(gateway, "tokenize_card", flaky)
    with pytest.raises(CommandError, match="502"):
        seed()
    assert 0 < Account.objects.count() < len(DEMO_ACCOUNTS)

    seed()

    assert Account.objects.count() == len(DEMO_ACCOUNTS)
    assert Membership.objects.count() == len(DEMO_ACCOUNTS) + 1  # the owners and viewer
    assert Invoice.objects.count() == 14
    assert Invoice.objects.filter(status=Invoice.Status.PAID).count() == 6
    for spec in DEMO_ACCOUNTS:
        assert [m.last4 for m in order_of(spec.name)] == [m.last4 for m in spec.order]
    call_command("reconcile_payments", stdout=io.StringIO())


def test_users_sign_in_with_their_roles(client):
    seed()
    User = get_user_model()
    for username in ("demo", "demo2", "viewer", "support"):
        assert client.login(username=username, password="demo"), username
    support = User.objects.get(username="support")
    assert support.is_staff and not support.is_superuser
    assert support.groups.filter(name="Support").exists() == Group.objects.filter(name="Support").exists()
    roles = set(Membership.objects.filter(user__username="viewer").values_list("account__name", "role"))
    assert roles == {("Acme Cloud (demo)", Membership.Role.VIEWER)}
    demo_accounts = Membership.objects.filter(user__username="demo", role=Membership.Role.OWNER)
    assert demo_accounts.count() == 2  # the account switcher has something to switch


def test_demo_methods_keep_no_card_numbers_and_the_expired_one_is_expired():
    seed()
    today = timezone.localdate()
    hooli_primary = order_of("Hooli (demo)")[0]
    assert hooli_primary.is_expired_on(today)
    assert all(m.token.startswith("tok_sandbox_") for m in PaymentMethod.objects.all())
    assert not any(m.is_expired_on(today) for m in PaymentMethod.objects.exclude(pk=hooli_primary.pk))
    on_file = PaymentMethod.objects.filter(account__name="Acme Cloud (demo)", rank__isnull=True)
    assert [m.kind for m in on_file] == [PaymentMethod.Kind.ACH_DEBIT]


def test_past_invoices_are_paid_and_match_the_gateway_ledger():
    seed()
    paid = Invoice.objects.filter(status=Invoice.Status.PAID)
    assert paid.count() == 6
    for invoice in paid:
        assert invoice.paid_at.date() < timezone.localdate()
        charge = SandboxCharge.objects.get(idempotency_key=invoice.paid_by_attempt.idempotency_key)
        assert (charge.status, charge.amount_minor) == ("succeeded", invoice.amount_minor)
    call_command("reconcile_payments", stdout=io.StringIO())  # exits 1 on any difference


@pytest.mark.django_db(transaction=True)
def test_settlement_shows_every_outcome():
    seed()
    out = io.StringIO()
    call_command("settle_invoices", "--json", stdout=out)
    summary = json.loads(out.getvalue().strip().splitlines()[-1])

    def attempts(number):
        return list(
            Invoice.objects.get(number=number)
            .attempts.order_by("sequence")
            .values_list("position", "status", "decline_code", "skip_reason")
        )

    Status = PaymentAttempt.Status
    assert attempts("DEMO-ACME-0004") == [
        (1, Status.FAILED, "insufficient_funds", ""),
        (2, Status.SUCCEEDED, "", ""),
    ]
    assert attempts("DEMO-ACMEEU-0001") == [
        (1, Status.SKIPPED, "", "currency"),
        (2, Status.SUCCEEDED, "", ""),
    ]
    assert attempts("DEMO-GLOBEX-0004") == [(1, Status.SUCCEEDED, "", "")]
    assert attempts("DEMO-GLOBEX-0005") == [(1, Status.SUCCEEDED, "", "")]
    assert attempts("DEMO-INITECH-0001") == [
        (1, Status.FAILED, "generic_decline", ""),
        (2, Status.FAILED, "generic_decline", ""),
    ]
    assert attempts("DEMO-UMBRELLA-0001") == [
        (1, Status.FAILED, "lost_card", ""),
        (2, Status.SUCCEEDED, "", ""),
    ]
    assert attempts("DEMO-HOOLI-0001") == [(1, Status.SKIPPED, "", "expired"), (2, Status.SUCCEEDED, "", "")]
    assert attempts("DEMO-SOYLENT-0001") == [(1, Status.PENDING, "", "")]
    assert Account.objects.get(name="Initech (demo)").status == Account.Status.PAST_DUE
    assert order_of("Umbrella (demo)")[0].blocked_reason == "lost_card"
    expected = {
        "considered": 8,
        "paid": 6,
        "paid_by_primary": 2,
        "paid_by_backup": 4,
        "past_due": 1,
        "pending": 1,
        "errors": 0,
    }
    assert {key: summary[key] for key in expected} == expected


# Benchmark mode.


def test_scenarios_are_dealt_in_proportion_and_a_longer_run_keeps_the_first_ones():
    dealt = scenarios_deal(DEFAULT_MIX, 100)
    assert [dealt.count(s) for s in (PRIMARY_PAYS, BACKUP_PAYS, ALL_DECLINED)] == [70, 20, 10]
    assert [dealt[:10].count(s) for s in (PRIMARY_PAYS, BACKUP_PAYS, ALL_DECLINED)] == [7, 2, 1]
    assert scenarios_deal(DEFAULT_MIX, 250)[:100] == dealt


def test_benchmark_mode_creates_the_requested_counts_and_mix():
    output = seed("--accounts", "20", "--invoices-per-account", "3")

    accounts = Account.objects.filter(name__startswith="Bench customer")
    assert accounts.count() == 20
    assert Invoice.objects.filter(account__in=accounts, status=Invoice.Status.OPEN).count() == 60
    assert not Account.objects.filter(name__endswith="(demo)").exists()
    primaries = [order_of(a.name)[0].last4 for a in accounts]
    backups = [order_of(a.name)[1].last4 for a in accounts]
    assert primaries.count("4242") == 14  # primary pays
    assert list(zip(primaries, backups, strict=True)).count(("0002", "4444")) == 4  # backup pays
    assert list(zip(primaries, backups, strict=True)).count(("0002", "9995")) == 2  # all declined
    # Every method has a token of its own that the sandbox knows.
    tokens = list(PaymentMethod.objects.values_list("token", flat=True))
    assert len(set(tokens)) == len(tokens) == 40
    assert SandboxToken.objects.filter(token__in=tokens).count() == 40
    assert "primary_pays 42 (70%), backup_pays 12 (20%), all_declined 6 (10%)" in output

    before = counts()
    assert "nothing changed" in seed("--accounts", "20", "--invoices-per-account", "3")
    assert counts() == before


@pytest.mark.django_db(transaction=True)
def test_benchmark_data_settles_in_the_documented_mix():
    seed("--accounts", "10", "--invoices-per-account", "2", "--mix", "50,30,20")
    out = io.StringIO()
    call_command("settle_invoices", "--json", stdout=out)
    summary = json.loads(out.getvalue().strip().splitlines()[-1])
    assert (summary["paid_by_primary"], summary["paid_by_backup"], summary["past_due"]) == (10, 6, 4)


def test_benchmark_mode_grows_without_touching_what_exists():
    seed("--accounts", "5", "--invoices-per-account", "2")
    first = set(Invoice.objects.values_list("pk", flat=True))

    output = seed("--accounts", "7", "--invoices-per-account", "3")

    assert Account.objects.count() == 7
    assert Invoice.objects.count() == 21
    assert first <= set(Invoice.objects.values_list("pk", flat=True))
    assert "(10 already present)" in output


@pytest.mark.parametrize(
    "args",
    [
        ("--accounts", "0", "--invoices-per-account", "1"),
        ("--accounts", "3"),
        ("--accounts", "3", "--invoices-per-account", "1", "--mix", "70,30"),
        ("--accounts", "3", "--invoices-per-account", "1", "--mix", "a,b,c"),
        ("--accounts", "3", "--invoices-per-account", "1", "--mix", "0,0,0"),
    ],
)
def test_benchmark_mode_refuses_bad_arguments(args):
    with pytest.raises(CommandError):
        seed(*args)
    assert not Account.objects.exists()
