"""Building the hand-made demo (``cast.py``) through the same services the console uses.

Methods are tokenised through the configured gateway with its test numbers, then kept through
``payment_method_create`` like any other; invoices are issued through ``invoice_issue``.
"""

import dataclasses
import datetime
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from accounts.models import Account, AuditEvent, Membership
from core.bulk import insert_rows
from invoices import transitions
from invoices.models import Invoice, PaymentAttempt
from invoices.services import InvoiceData, invoice_issue
from payments.customers import gateway_customer_reference
from payments.gateways import get_gateway
from payments.gateways.base import ChargeStatus, GatewayError, TokenizedMethod
from payments.models import PaymentMethod
from payments.services import charge_order_ids, charge_order_set, payment_method_create

from .cast import (
    DEMO_ACCOUNTS,
    DEMO_PASSWORD,
    DEMO_USERS,
    US_ROUTING_NUMBER,
    Card,
    DemoAccount,
    Method,
    SepaAccount,
)

ACTOR_LABEL = "seed_demo"
SETTLEMENT_ACTOR = transitions.SETTLEMENT_ACTOR


class DemoSeedError(Exception):
    """The demo could not be built (the gateway refused a test number, a charge failed …)."""


@dataclasses.dataclass
class DemoReport:
    users: int = 0
    accounts: int = 0
    memberships: int = 0
    methods: int = 0
    charge_orders: int = 0
    invoices: int = 0
    paid_history: int = 0
    support_group: bool | None = None  # None: there is no Support group (yet)

    @property
    def changed(self) -> bool:
        return any(
            (
                self.users,
                self.accounts,
                self.memberships,
                self.methods,
                self.charge_orders,
                self.invoices,
                self.paid_history,
                self.support_group,
            )
        )


def _users(report: DemoReport) -> dict:
    User = get_user_model()
    users = {}
    for username, (email, is_staff) in DEMO_USERS.items():
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User(username=username, email=email, is_staff=is_staff)
            user.set_password(DEMO_PASSWORD)
            user.save()
            report.users += 1
        users[username] = user
    support = Group.objects.filter(name="Support").first()
    if support is not None and not users["support"].groups.filter(pk=support.pk).exists():
        users["support"].groups.add(support)
        report.support_group = True
    elif support is not None:
        report.support_group = False
    return users


def _tokenize(method: Method, account: Account) -> TokenizedMethod:
    """A demo method through the sandbox's server-side path, saved to the account's customer."""
    gateway = get_gateway()
    try:
        if isinstance(method, Card):
            collected = gateway.tokenize_card(
                number=method.number, exp_month=12, exp_year=timezone.localdate().year + 3, cvc="123"
            )
        elif isinstance(method, SepaAccount):
            collected = gateway.tokenize_sepa_debit(iban=method.iban, account_holder="Demo Customer")
        else:
            collected = gateway.tokenize_ach_debit(
                routing_number=US_ROUTING_NUMBER,
                account_number=method.account_number,
                account_holder="Demo Customer",
            )
        tokenized = gateway.finish_setup(
            account=account,
            kind=collected.kind,
            customer=gateway_customer_reference(account_id=account.pk, gateway=gateway.name),
            reference=collected.token,
        )
    except GatewayError as exc:
        raise DemoSeedError(f"The {gateway.name} gateway refused a demo {method.kind}: {exc}") from exc
    if isinstance(method, Card) and method.expired:
        tokenized = dataclasses.replace(tokenized, exp_month=1, exp_year=timezone.localdate().year - 1)
    return tokenized


def _methods(spec: DemoAccount, account: Account, owner, report: DemoReport) -> dict[Method, PaymentMethod]:
    """The account's methods by spec, tokenising (outside any transaction) those not kept yet."""
    # (kind, last 4) tells the demo's methods apart within an account.
    kept = {(m.kind, m.last4): m for m in PaymentMethod.objects.active().filter(account=account)}
    found = {}
    for method in dict.fromkeys((*spec.order, *spec.on_file)):
        existing = kept.get((method.kind, method.last4))
        if existing is None:
            existing = payment_method_create(
                account=account,
                actor=owner,
                tokenized=_tokenize(method, account),
                gateway=get_gateway().name,
                add_to_order=False,
            )
            report.methods += 1
        found[method] = existing
    return found


def _order_set(account: Account, owner, method_ids: list[int], report: DemoReport) -> None:
    if charge_order_ids(account=account) != method_ids:
        charge_order_set(account=account, actor=owner, method_ids=method_ids)
        report.charge_orders += 1


def _invoice(
    account: Account, *, number: str, amount_minor: int, currency: str, issued_on, due_on, description
) -> tuple[Invoice, bool]:
    existing = Invoice.objects.filter(number=number).first()
    if existing is not None:
        return existing, False
    return invoice_issue(
        data=InvoiceData(
            account_id=account.pk,
            number=number,
            currency=currency,
            amount_minor=amount_minor,
            issued_on=issued_on,
            due_on=due_on,
            description=description,
        ),
        actor_label=ACTOR_LABEL,
    )


def _backdate_events(invoice: Invoice, *, action: str, when: datetime.datetime) -> None:
    AuditEvent.objects.filter(
        account_id=invoice.account_id, object_type="invoice", object_id=str(invoice.pk), action=action
    ).update(created_at=when)


def _history_pay(invoice: Invoice, method: PaymentMethod, *, paid_at: datetime.datetime) -> None:
    """Charge a past invoice through the gateway as a settlement run would have, dated ``paid_at``.

    The attempt is committed before the call, and an unfinished one from an interrupted seed is
    finished with its own idempotency key, so the gateway's ledger and ours always agree.
    """
    attempt = invoice.attempts.filter(sequence=1).first()
    if attempt is None:
        order = charge_order_ids(account=invoice.account)
        with transaction.atomic():
            attempt = transitions.attempt_start(
                invoice=invoice,
                sequence=1,
                method=method,
                position=order.index(method.pk) + 1 if method.pk in order else None,
                ctx=transitions.context_now(),
                # Random, and kept on the row: unique even if the gateway's ledger outlives this database.
                idempotency_key=f"demo-{invoice.number}-{secrets.token_hex(8)}",
            )
            attempt.save(force_insert=True)
    gateway = get_gateway()
    result = gateway.charge(
        customer=gateway_customer_reference(account_id=invoice.account_id, gateway=gateway.name),
        method_token=attempt.method.token,
        amount_minor=attempt.amount_minor,
        currency=attempt.currency,
        idempotency_key=attempt.idempotency_key,
        metadata={"invoice": invoice.number, "attempt": attempt.idempotency_key},
        timeout=settings.GATEWAY_TIMEOUT_SECONDS,
    )
    if result.status != ChargeStatus.SUCCEEDED:
        raise DemoSeedError(
            f"The demo history charge of {invoice.number} came back {result.status} {result.decline_code}."
        )
    with transaction.atomic():
        attempt = PaymentAttempt.objects.select_for_update().get(pk=attempt.pk)
        invoice = Invoice.objects.select_for_update().select_related("account").get(pk=invoice.pk)
        transitions.attempt_record(attempt, result, now=paid_at)
        attempt.created_at = paid_at
        attempt.save(update_fields=[*transitions.ATTEMPT_OUTCOME_FIELDS, "created_at"])
        change = transitions.invoice_paid(
            invoice=invoice, attempt=attempt, ctx=transitions.context_now(actor_label=SETTLEMENT_ACTOR)
        )
        invoice.save(update_fields=[*change.invoice_fields, "updated_at"])
        insert_rows(change.audits)
        _backdate_events(invoice, action=AuditEvent.Action.INVOICE_PAID, when=paid_at)


def _history(
    spec: DemoAccount, account: Account, owner, methods: dict, report: DemoReport, today: datetime.date
) -> None:
    if not spec.history:
        return
    method = methods[spec.history_method]
    if not charge_order_ids(account=account):
        # The charge order when those invoices were paid: the history method was the primary then.
        _order_set(account, owner, [method.pk], report)
    for months_ago, amount in zip(range(len(spec.history), 0, -1), spec.history, strict=True):
        issued_on = today - datetime.timedelta(days=30 * months_ago + 14)
        due_on = issued_on + datetime.timedelta(days=13)
        invoice, created = _invoice(
            account,
            number=f"DEMO-{spec.slug}-{len(spec.history) - months_ago + 1:04d}",
            amount_minor=amount,
            currency=spec.currency,
            issued_on=issued_on,
            due_on=due_on,
            description=f"Usage, {issued_on:%B %Y}",
        )
        report.invoices += created
        if created:
            issued_at = timezone.make_aware(datetime.datetime.combine(issued_on, datetime.time(6)))
            _backdate_events(invoice, action=AuditEvent.Action.INVOICE_ISSUED, when=issued_at)
        if invoice.status == Invoice.Status.OPEN:
            paid_at = timezone.make_aware(datetime.datetime.combine(due_on, datetime.time(6, 5)))
            _history_pay(invoice, method, paid_at=paid_at)
            report.paid_history += 1


def _account(spec: DemoAccount, users: dict, report: DemoReport, today: datetime.date) -> Account:
    account = Account.objects.filter(name=spec.name).first()
    if account is None:
        account = Account.objects.create(
            name=spec.name, billing_email=f"billing@{spec.slug.lower()}.example", currency=spec.currency
        )
        report.accounts += 1
    owner = users[spec.owner]
    # The owner joins last, so an account with its owner is complete: leave it as the console
    # left it. One without (new, or cut short by an error) is completed.
    if Membership.objects.filter(account=account, user=owner, role=Membership.Role.OWNER).exists():
        return account
    methods = _methods(spec, account, owner, report)
    _history(spec, account, owner, methods, report, today)
    _order_set(account, owner, [methods[m].pk for m in spec.order], report)
    first_open = len(spec.history) + 1
    for n, item in enumerate(spec.open_invoices, start=first_open):
        _invoice_obj, created = _invoice(
            account,
            number=f"DEMO-{spec.slug}-{n:04d}",
            amount_minor=item.amount_minor,
            currency=item.currency or spec.currency,
            issued_on=today - datetime.timedelta(days=14),
            due_on=today - datetime.timedelta(days=1),
            description=item.description,
        )
        report.invoices += created
    # Members join last, so building the demo does not mail them a security notice per change;
    # the owner last of all (see above).
    for username, role in (*spec.members, (spec.owner, Membership.Role.OWNER)):
        _membership, created = Membership.objects.get_or_create(
            account=account, user=users[username], defaults={"role": role}
        )
        report.memberships += created
    return account


def demo_seed() -> DemoReport:
    """Create whatever of the demo is missing; running it again changes nothing."""
    report = DemoReport()
    today = timezone.localdate()
    users = _users(report)
    for spec in DEMO_ACCOUNTS:
        _account(spec, users, report, today)
    return report
