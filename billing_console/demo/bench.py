"""Benchmark-sized data: N accounts with M due invoices each and a known mix of outcomes, bulk-inserted.

An account's charge order decides how its invoices settle, so the mix is dealt by account:

- ``primary_pays``: Visa 4242 (succeeds) → Mastercard 4444;
- ``backup_pays``: Visa 0002 (generic_decline) → Mastercard 4444;
- ``all_declined``: Visa 0002 (generic_decline) → Visa 9995 (insufficient_funds), both soft.

Accounts get scenarios by smooth weighted round robin, so any first n accounts hold the mix to
within one account, and a later run with more accounts keeps the ones made before. Bulk rows skip
the services' audit events and emails; nothing here is for a real customer.
"""

import dataclasses
import datetime
import time

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils import timezone

from accounts.models import Account, Membership
from invoices.models import Invoice
from payments.gateways import get_gateway
from payments.gateways.base import TokenizedMethod
from payments.models import ChargeOrderEntry, GatewayCustomer, PaymentMethod
from payments.sandbox import bench as sandbox_bench

from .cast import DEMO_PASSWORD
from .showcase import DemoSeedError

PRIMARY_PAYS = "primary_pays"
BACKUP_PAYS = "backup_pays"
ALL_DECLINED = "all_declined"
SCENARIOS = {
    PRIMARY_PAYS: ("4242424242424242", "5555555555554444"),
    BACKUP_PAYS: ("4000000000000002", "5555555555554444"),
    ALL_DECLINED: ("4000000000000002", "4000000000009995"),
}
DEFAULT_MIX = {PRIMARY_PAYS: 70, BACKUP_PAYS: 20, ALL_DECLINED: 10}
BATCH_SIZE = 2000
USERNAME = "bench{:06d}"
INVOICE_NUMBER = "BENCH-{:06d}-{:05d}"


@dataclasses.dataclass
class BenchReport:
    accounts: int = 0
    users: int = 0
    methods: int = 0
    invoices: int = 0
    invoices_present: int = 0
    # Invoices of the requested accounts by scenario, whether made now or before.
    mix: dict[str, int] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.accounts or self.invoices)


def scenarios_deal(mix: dict[str, int], count: int) -> list[str]:
    """``count`` scenarios in the proportions of ``mix``, spread evenly (smooth weighted round robin)."""
    total = sum(mix.values())
    if total <= 0 or any(weight < 0 for weight in mix.values()):
        raise ValueError("The mix needs non-negative weights that add up to more than zero.")
    current = dict.fromkeys(mix, 0)
    dealt = []
    for _ in range(count):
        for name, weight in mix.items():
            current[name] += weight
        chosen = max(current, key=current.__getitem__)
        current[chosen] -= total
        dealt.append(chosen)
    return dealt


def _sandbox_tokens(template: TokenizedMethod, count: int) -> list[str]:
    """``count`` fresh tokens that charge like ``template`` (each method needs a token of its own)."""
    return sandbox_bench.tokens_like(token=template.token, count=count)


def _templates() -> dict[str, TokenizedMethod]:
    gateway = get_gateway()
    if gateway.name != "sandbox":
        raise DemoSeedError(
            "Benchmark data can only be made with the sandbox gateway (PAYMENT_GATEWAY=sandbox)."
        )
    year = timezone.localdate().year + 3
    numbers = dict.fromkeys(number for pair in SCENARIOS.values() for number in pair)
    return {
        number: gateway.tokenize_card(number=number, exp_month=12, exp_year=year, cvc="123")
        for number in numbers
    }


def _existing_accounts() -> dict[int, int]:
    """Benchmark accounts made before: their index → account id."""
    owners = Membership.objects.filter(
        user__username__startswith="bench", role=Membership.Role.OWNER
    ).values_list("user__username", "account_id")
    found = {}
    for username, account_id in owners:
        suffix = username.removeprefix("bench")
        if suffix.isdigit():
            found[int(suffix)] = account_id
    return found


def _mint_tokens(indexes: list[int], scenarios: dict[int, str]) -> tuple[dict, dict]:
    """Per method to make, in order: (account index, card number); and fresh tokens per number."""
    wanted = [(i, number) for i in indexes for number in SCENARIOS[scenarios[i]]]
    if not wanted:
        return {}, {}
    templates = _templates()
    tokens = {
        number: iter(_sandbox_tokens(template, sum(1 for _i, n in wanted if n == number)))
        for number, template in templates.items()
    }
    return templates, tokens


def _create_accounts(
    indexes: list[int],
    scenarios: dict[int, str],
    templates: dict,
    tokens: dict,
    customers: list[str],
    report: BenchReport,
) -> dict[int, int]:
    if not indexes:
        return {}
    User = get_user_model()
    password = make_password(DEMO_PASSWORD)  # hashed once: the slow part of making a user
    users = User.objects.bulk_create(
        (
            User(username=USERNAME.format(i), email=f"{USERNAME.format(i)}@bench.example", password=password)
            for i in indexes
        ),
        batch_size=BATCH_SIZE,
    )
    accounts = Account.objects.bulk_create(
        (
            Account(
                name=f"Bench customer {i:06d}", billing_email=f"billing{i:06d}@bench.example", currency="USD"
            )
            for i in indexes
        ),
        batch_size=BATCH_SIZE,
    )
    Membership.objects.bulk_create(
        (
            Membership(account=account, user=user, role=Membership.Role.OWNER)
            for account, user in zip(accounts, users, strict=True)
        ),
        batch_size=BATCH_SIZE,
    )
    GatewayCustomer.objects.bulk_create(
        (
            GatewayCustomer(account=account, gateway="sandbox", reference=reference)
            for account, reference in zip(accounts, customers, strict=True)
        ),
        batch_size=BATCH_SIZE,
    )
    report.accounts += len(accounts)
    report.users += len(users)

    wanted = [(i, number) for i in indexes for number in SCENARIOS[scenarios[i]]]
    by_index = {i: (account, user) for i, account, user in zip(indexes, accounts, users, strict=True)}
    methods = PaymentMethod.objects.bulk_create(
        (
            PaymentMethod(
                account=by_index[i][0],
                kind=templates[number].kind,
                gateway="sandbox",
                token=next(tokens[number]),
                fingerprint=templates[number].fingerprint,
                brand=templates[number].brand,
                last4=templates[number].last4,
                exp_month=templates[number].exp_month,
                exp_year=templates[number].exp_year,
                added_by=by_index[i][1],
            )
            for i, number in wanted
        ),
        batch_size=BATCH_SIZE,
    )
    report.methods += len(methods)
    positions = {}
    entries = []
    for method in methods:
        positions[method.account_id] = positions.get(method.account_id, 0) + 1
        entries.append(
            ChargeOrderEntry(
                account_id=method.account_id, method=method, position=positions[method.account_id]
            )
        )
    ChargeOrderEntry.objects.bulk_create(entries, batch_size=BATCH_SIZE)
    return {i: by_index[i][0].pk for i in indexes}


def _create_invoices(account_ids: dict[int, int], invoices_per_account: int, report: BenchReport) -> None:
    present = set(Invoice.objects.filter(number__startswith="BENCH-").values_list("number", flat=True))
    today = timezone.localdate()
    issued_on, due_on = today - datetime.timedelta(days=30), today - datetime.timedelta(days=1)
    due_at = timezone.make_aware(datetime.datetime.combine(due_on, datetime.time.min))
    batch = []
    for i, account_id in sorted(account_ids.items()):
        for j in range(1, invoices_per_account + 1):
            number = INVOICE_NUMBER.format(i, j)
            if number in present:
                report.invoices_present += 1
                continue
            batch.append(
                Invoice(
                    account_id=account_id,
                    number=number,
                    currency="USD",
                    amount_minor=500 + (i * 7919 + j * 104_729) % 99_500,
                    description="Benchmark usage",
                    issued_on=issued_on,
                    due_on=due_on,
                    next_attempt_at=due_at,
                )
            )
            if len(batch) >= BATCH_SIZE:
                Invoice.objects.bulk_create(batch)
                report.invoices += len(batch)
                batch = []
    Invoice.objects.bulk_create(batch)
    report.invoices += len(batch)


def bench_seed(*, accounts: int, invoices_per_account: int, mix: dict[str, int] | None = None) -> BenchReport:
    """Make benchmark accounts 1..``accounts`` (users bench000001 … with the demo password) and
    ``invoices_per_account`` due invoices each; what exists already is kept."""
    started = time.monotonic()
    mix = mix or DEFAULT_MIX
    report = BenchReport()
    dealt = dict(enumerate(scenarios_deal(mix, accounts), start=1))
    account_ids = {i: a for i, a in _existing_accounts().items() if i <= accounts}
    missing = [i for i in dealt if i not in account_ids]
    # Tokens and customers first, outside our transaction: the gateway is another system.
    templates, tokens = _mint_tokens(missing, dealt)
    customers = sandbox_bench.customers(len(missing)) if missing else []
    with transaction.atomic():
        account_ids.update(_create_accounts(missing, dealt, templates, tokens, customers, report))
        _create_invoices(account_ids, invoices_per_account, report)
    report.mix = {name: 0 for name in mix}
    for i in account_ids:
        report.mix[dealt[i]] += invoices_per_account
    report.seconds = time.monotonic() - started
    return report
