"""The sandbox gateway behaves like a remote processor: test numbers, faults, idempotency, its own ledger."""

import datetime
import hashlib
import hmac
import logging
import threading
from pathlib import Path

import pytest
import time_machine
from django.apps import apps
from django.conf import settings as django_settings
from django.db import connections, transaction
from django.utils import timezone

from payments.declines import HARD, SOFT, decline_class
from payments.gateways import get_gateway, sandbox
from payments.gateways.base import (
    ChargeStatus,
    GatewayError,
    GatewayUnavailable,
    IdempotencyConflict,
    InvalidPaymentDetails,
    LedgerEntry,
)
from payments.gateways.sandbox import SandboxGateway
from payments.sandbox import charges, numbers
from payments.sandbox.models import SandboxCharge, SandboxFault, SandboxRefund, SandboxToken

pytestmark = pytest.mark.django_db

SUCCEEDED, FAILED, PENDING = ChargeStatus.SUCCEEDED, ChargeStatus.FAILED, ChargeStatus.PENDING
REPLY_LOST_CARD = "4000000000008013"
TIMEOUT_CARD = "4000000000008021"
BAD_GATEWAY_CARD = "4000000000008039"
SLOW_CARD = "4000000000008047"


@pytest.fixture
def gateway():
    return SandboxGateway()


@pytest.fixture
def sleeps(monkeypatch):
    """Every time.sleep the gateway asks for, in seconds, without waiting."""
    calls = []
    monkeypatch.setattr(charges.time, "sleep", calls.append)
    return calls


def card(gateway, number="4242424242424242"):
    return gateway.tokenize_card(number=number, exp_month=12, exp_year=timezone.now().year + 2, cvc="123")


def sepa(gateway, iban="DE89370400440532013000"):
    return gateway.tokenize_sepa_debit(iban=iban, account_holder="Erika Mustermann")


def ach(gateway, account="000123456789", routing="110000000"):
    return gateway.tokenize_ach_debit(
        routing_number=routing, account_number=account, account_holder="Jenny Rosen"
    )


def pay(
    gateway, token, *, key="inv-1:1", amount=12_500, currency="USD", timeout=30.0, customer="cus_sandbox_a"
):
    return gateway.charge(
        customer=customer,
        method_token=token,
        amount_minor=amount,
        currency=currency,
        idempotency_key=key,
        metadata={"invoice": "INV-1", "attempt": key},
        timeout=timeout,
    )


def later(**delta):
    return time_machine.travel(timezone.now() + datetime.timedelta(**delta), tick=False)


def test_the_default_gateway_is_the_sandbox():
    assert isinstance(get_gateway(), SandboxGateway)
    assert get_gateway().name == "sandbox"


def test_a_card_token_keeps_display_data_and_a_behaviour_only(gateway):
    tokenized = card(gateway, "4242 4242 4242 4242")
    assert tokenized.kind == "card"
    assert tokenized.token.startswith("tok_sandbox_")
    assert (tokenized.brand, tokenized.last4) == ("Visa", "4242")
    assert (tokenized.exp_month, tokenized.exp_year) == (12, timezone.now().year + 2)
    stored = SandboxToken.objects.get(token=tokenized.token)
    assert (stored.kind, stored.behaviour) == ("card", "succeeds")


def test_the_same_card_always_has_the_same_fingerprint(gateway):
    first, again, other = (
        card(gateway),
        card(gateway, "4242-4242-4242-4242"),
        card(gateway, "5555555555554444"),
    )
    expected = hmac.new(django_settings.SECRET_KEY.encode(), b"4242424242424242", hashlib.sha256).hexdigest()[
        :32
    ]
    assert first.fingerprint == again.fingerprint == expected
    assert first.token != again.token
    assert other.fingerprint != first.fingerprint


@pytest.mark.parametrize(
    ("number", "status", "code"),
    [
        ("4242424242424242", SUCCEEDED, ""),
        ("5555555555554444", SUCCEEDED, ""),
        ("4000000000000002", FAILED, "generic_decline"),
        ("4000000000009995", FAILED, "insufficient_funds"),
        ("4000000000009987", FAILED, "lost_card"),
        ("4000000000009979", FAILED, "stolen_card"),
        ("4000000000000069", FAILED, "expired_card"),
        ("4000000000000119", FAILED, "processing_error"),
        ("4000000000000341", FAILED, "generic_decline"),
    ],
)
def test_each_test_card_charges_as_documented(gateway, number, status, code):
    result = pay(gateway, card(gateway, number).token, key=f"key-{number}")
    assert (result.status, result.decline_code) == (status, code)
    assert result.reference.startswith("ch_sandbox_")
    assert (result.amount_minor, result.currency, result.idempotency_key) == (12_500, "USD", f"key-{number}")
    assert bool(result.message) == bool(code)
    row = SandboxCharge.objects.get()
    assert (row.reference, row.status, row.decline_code) == (result.reference, status, code)


@pytest.mark.parametrize(
    ("code", "klass"),
    [
        ("generic_decline", SOFT),
        ("insufficient_funds", SOFT),
        ("processing_error", SOFT),
        ("lost_card", HARD),
        ("stolen_card", HARD),
        ("expired_card", HARD),
        ("account_closed", HARD),
        ("incorrect_number", HARD),
        ("currency_not_supported", SOFT),
    ],
)
def test_every_code_the_sandbox_declines_with_has_the_specified_class(code, klass):
    assert decline_class(code) == klass


def test_the_attached_card_declines_every_charge(gateway):
    token = card(gateway, "4000000000000341").token
    results = [pay(gateway, token, key=f"round-{n}") for n in range(3)]
    assert {(r.status, r.decline_code) for r in results} == {(FAILED, "generic_decline")}
    assert SandboxCharge.objects.count() == 3


@pytest.mark.parametrize("number", ["4111111111111111", "378282246310005", "4539 1488 0343 6467"])
def test_any_other_valid_card_number_is_refused_as_not_a_test_card(gateway, number, caplog):
    caplog.set_level(logging.DEBUG)
    with pytest.raises(InvalidPaymentDetails) as caught:
        card(gateway, number)
    assert (caught.value.field, caught.value.code) == ("number", numbers.NOT_A_TEST_NUMBER)
    assert "is not a test card: the sandbox accepts only its test numbers" in caught.value.message
    digits = number.replace(" ", "")
    assert digits not in caught.value.message and digits[-4:] not in caught.value.message
    assert digits not in caplog.text and number not in caplog.text
    assert not SandboxToken.objects.exists()


@pytest.mark.parametrize(
    ("tokenize", "field"),
    [
        (lambda g: sepa(g, "FR1420041010050500013M02606"), "iban"),  # a valid IBAN, not a test one
        (lambda g: sepa(g, "GB82WEST12345698765432"), "iban"),
        (lambda g: ach(g, "9876543210"), "account_number"),  # a valid account, not a test one
    ],
)
def test_any_other_valid_bank_account_is_refused_as_not_a_test_account(gateway, tokenize, field):
    with pytest.raises(InvalidPaymentDetails) as caught:
        tokenize(gateway)
    assert (caught.value.field, caught.value.code) == (field, numbers.NOT_A_TEST_NUMBER)
    assert "is not a test account" in caught.value.message
    for secret in ("FR1420041010050500013M02606", "GB82WEST12345698765432", "9876543210"):
        assert secret not in caught.value.message
    assert not SandboxToken.objects.exists()


def test_a_number_failing_luhn_is_refused_at_entry(gateway):
    with pytest.raises(InvalidPaymentDetails) as caught:
        card(gateway, "4242424242424241")
    assert (caught.value.field, caught.value.code) == ("number", "incorrect_number")
    assert "4242424242424241" not in str(caught.value)
    assert not SandboxToken.objects.exists()


@pytest.mark.parametrize(
    ("details", "field"),
    [
        ({"number": "4242424242424242", "exp_month": 13, "exp_year": 2030, "cvc": "123"}, "exp_month"),
        ({"number": "4242424242424242", "exp_month": 1, "exp_year": 2001, "cvc": "123"}, "exp_year"),
        ({"number": "4242424242424242", "exp_month": 1, "exp_year": 2030, "cvc": "12"}, "cvc"),
    ],
)
def test_bad_card_details_blame_their_field(gateway, details, field):
    with pytest.raises(InvalidPaymentDetails) as caught:
        gateway.tokenize_card(**details)
    assert caught.value.field == field
    assert not SandboxToken.objects.exists()


def test_bad_bank_details_blame_their_field(gateway):
    with pytest.raises(InvalidPaymentDetails) as caught:
        sepa(gateway, "DE00370400440532013000")
    assert caught.value.field == "iban"
    with pytest.raises(InvalidPaymentDetails) as caught:
        ach(gateway, routing="110000001")
    assert caught.value.field == "routing_number"
    with pytest.raises(InvalidPaymentDetails) as caught:
        ach(gateway, account="123")
    assert caught.value.field == "account_number"
    with pytest.raises(InvalidPaymentDetails) as caught:
        gateway.tokenize_sepa_debit(iban="DE89370400440532013000", account_holder=" ")
    assert caught.value.field == "account_holder"
    assert not SandboxToken.objects.exists()


def test_a_replay_returns_the_first_result_and_charges_nothing_more(gateway):
    token = card(gateway).token
    first = pay(gateway, token)
    assert pay(gateway, token) == first
    assert pay(gateway, token, currency="usd") == first
    assert SandboxCharge.objects.count() == 1


@pytest.mark.parametrize(
    "other", [{"amount": 12_501}, {"currency": "EUR"}, {"token": "tok_sandbox_someone_else"}]
)
def test_the_same_key_with_other_parameters_is_a_conflict(gateway, other):
    token = card(gateway).token
    pay(gateway, token)
    with pytest.raises(IdempotencyConflict):
        pay(gateway, other.pop("token", token), **other)
    assert SandboxCharge.objects.count() == 1


@pytest.mark.parametrize(("amount", "conflict"), [(12_500, False), (99, True)])
def test_a_call_that_loses_the_insert_race_returns_the_winners_charge(gateway, monkeypatch, amount, conflict):
    """Another process commits a charge for the key between our look and our insert."""
    token = card(gateway).token
    real_outcome = charges.charge_outcome

    def winner_commits_first(method, *, currency):
        SandboxCharge.objects.create(
            reference="ch_sandbox_winner",
            idempotency_key="inv-1:1",
            token=token,
            amount_minor=amount,
            currency="USD",
            status="succeeded",
        )
        return real_outcome(method, currency=currency)

    monkeypatch.setattr(charges, "charge_outcome", winner_commits_first)
    if conflict:
        with pytest.raises(IdempotencyConflict):
            pay(gateway, token)
    else:
        assert pay(gateway, token).reference == "ch_sandbox_winner"
    assert SandboxCharge.objects.count() == 1


def test_an_unknown_token_is_declined_as_incorrect_number(gateway):
    result = pay(gateway, "tok_sandbox_never_issued")
    assert (result.status, result.decline_code) == (FAILED, "incorrect_number")
    assert decline_class(result.decline_code) == HARD
    assert pay(gateway, "tok_sandbox_never_issued") == result
    assert SandboxCharge.objects.count() == 1


@pytest.mark.parametrize(
    "bad",
    [{"amount": 0}, {"amount": -5}, {"amount": 1.5}, {"currency": "EURO"}, {"currency": "€€€"}, {"key": ""}],
)
def test_malformed_charges_are_refused_and_not_recorded(gateway, bad):
    with pytest.raises(GatewayError):
        pay(gateway, card(gateway).token, **bad)
    assert not SandboxCharge.objects.exists()


def test_a_card_pays_any_currency(gateway):
    token = card(gateway).token
    assert pay(gateway, token, key="jpy", currency="JPY", amount=1500).status == SUCCEEDED
    assert pay(gateway, token, key="kwd", currency="kwd", amount=1250).currency == "KWD"


def test_bank_debits_pay_only_their_own_currency(gateway):
    for token, currency in [(sepa(gateway).token, "USD"), (ach(gateway).token, "EUR")]:
        result = pay(gateway, token, key=f"{token}-{currency}", currency=currency)
        assert (result.status, result.decline_code) == (FAILED, "currency_not_supported")


def test_reply_lost_card_charges_then_raises_and_the_charge_is_found_later(gateway):
    token = card(gateway, REPLY_LOST_CARD).token
    with pytest.raises(GatewayUnavailable):
        pay(gateway, token)
    charge = SandboxCharge.objects.get()
    assert charge.status == "succeeded"
    assert gateway.find("inv-1:1").status == SUCCEEDED
    retried = pay(gateway, token)
    assert (retried.status, retried.reference) == (SUCCEEDED, charge.reference)
    assert SandboxCharge.objects.count() == 1
    with pytest.raises(GatewayUnavailable):  # a new key is a new charge, whose reply is lost too
        pay(gateway, token, key="inv-2:1")
    assert SandboxCharge.objects.count() == 2


@pytest.mark.parametrize(("number", "message"), [(TIMEOUT_CARD, "Timed out"), (BAD_GATEWAY_CARD, "502")])
def test_once_per_key_faults_fail_the_first_call_without_charging(gateway, number, message):
    token = card(gateway, number).token
    with pytest.raises(GatewayUnavailable, match=message):
        pay(gateway, token)
    assert not SandboxCharge.objects.exists()
    assert gateway.find("inv-1:1") is None
    assert pay(gateway, token).status == SUCCEEDED
    assert pay(gateway, token).status == SUCCEEDED
    assert SandboxCharge.objects.count() == 1
    assert SandboxFault.objects.get().idempotency_key == "inv-1:1"
    with pytest.raises(GatewayUnavailable, match=message):  # each new key strikes once
        pay(gateway, token, key="inv-2:1")


def test_slow_card_answers_late_but_within_the_timeout(gateway, sleeps):
    result = pay(gateway, card(gateway, SLOW_CARD).token, timeout=30)
    assert result.status == SUCCEEDED
    assert sleeps == [2.0]


def test_slow_card_charges_then_times_out_when_the_caller_gives_up_first(gateway, sleeps):
    token = card(gateway, SLOW_CARD).token
    with pytest.raises(GatewayUnavailable, match=r"Timed out after 0\.5 s"):
        pay(gateway, token, timeout=0.5)
    assert sleeps == [0.5]
    assert SandboxCharge.objects.get().status == "succeeded"
    assert gateway.find("inv-1:1").status == SUCCEEDED
    assert pay(gateway, token, timeout=5).status == SUCCEEDED
    assert SandboxCharge.objects.count() == 1


def test_slow_card_delay_is_a_setting(gateway, sleeps, settings):
    settings.SANDBOX_SLOW_REPLY_SECONDS = 7
    with pytest.raises(GatewayUnavailable):
        pay(gateway, card(gateway, SLOW_CARD).token, timeout=5)
    assert sleeps == [5]


def test_latency_is_added_to_every_call(gateway, sleeps, settings):
    settings.SANDBOX_LATENCY_MS = 250
    token = card(gateway).token
    result = pay(gateway, token)
    gateway.retrieve(result.reference)
    gateway.find("inv-1:1")
    gateway.refund(reference=result.reference, idempotency_key="refund-1")
    gateway.list_charges()
    sepa(gateway)
    ach(gateway)
    customer = gateway.customer_create(account_id=1)
    gateway.finish_setup(account=None, kind="card", customer=customer, reference=token)
    assert sleeps == [0.25] * 10


def test_no_latency_by_default(gateway, sleeps):
    pay(gateway, card(gateway).token)
    assert sleeps == []


@pytest.mark.parametrize(
    ("iban", "status", "code"),
    [
        ("DE89370400440532013000", SUCCEEDED, ""),
        ("DE62370400440532013001", FAILED, "insufficient_funds"),
        ("DE35370400440532013002", FAILED, "account_closed"),
    ],
)
def test_sepa_debits_are_pending_then_clear_at_the_next_look(gateway, iban, status, code):
    tokenized = sepa(gateway, iban)
    assert (tokenized.kind, tokenized.last4, tokenized.brand) == ("sepa_debit", iban[-4:], "")
    charged = pay(gateway, tokenized.token, currency="EUR")
    assert (charged.status, charged.decline_code) == (PENDING, "")
    cleared = gateway.retrieve(charged.reference)
    assert (cleared.status, cleared.decline_code, cleared.reference) == (status, code, charged.reference)
    assert SandboxCharge.objects.get().status == status


@pytest.mark.parametrize(
    ("account", "status", "code"),
    [
        ("000123456789", SUCCEEDED, ""),
        ("000111111116", FAILED, "insufficient_funds"),
        ("000111111113", FAILED, "account_closed"),
    ],
)
def test_us_bank_debits_are_pending_then_clear_at_the_next_look(gateway, account, status, code):
    tokenized = ach(gateway, account)
    assert (tokenized.kind, tokenized.last4) == ("ach_debit", account[-4:])
    assert pay(gateway, tokenized.token).status == PENDING
    cleared = gateway.find("inv-1:1")
    assert (cleared.status, cleared.decline_code) == (status, code)


@pytest.mark.parametrize(
    "tokenize", [lambda g: sepa(g, "DE08370400440532013003"), lambda g: ach(g, "000444444440")]
)
def test_the_late_failing_account_stays_pending_for_three_minutes_then_fails(gateway, tokenize):
    token = tokenize(gateway).token
    currency = "EUR" if SandboxToken.objects.get(token=token).kind == "sepa_debit" else "USD"
    assert pay(gateway, token, currency=currency).status == PENDING
    assert gateway.find("inv-1:1").status == PENDING
    with later(minutes=2, seconds=59):
        assert gateway.find("inv-1:1").status == PENDING
    with later(minutes=3, seconds=1):
        failed = gateway.find("inv-1:1")
    assert (failed.status, failed.decline_code) == (FAILED, "insufficient_funds")


def test_clearing_waits_for_the_clearing_setting(gateway, settings):
    settings.SANDBOX_CLEARING_SECONDS = 3600
    token = sepa(gateway).token
    pay(gateway, token, currency="EUR")
    assert gateway.find("inv-1:1").status == PENDING
    assert pay(gateway, token, currency="EUR").status == PENDING  # a replay shows the same charge
    with later(hours=1):
        assert gateway.find("inv-1:1").status == SUCCEEDED
        assert pay(gateway, token, currency="EUR").status == SUCCEEDED
    assert SandboxCharge.objects.count() == 1


def test_find_by_key_and_retrieve_by_reference(gateway):
    result = pay(gateway, card(gateway).token)
    assert gateway.find("inv-1:1") == result
    assert gateway.find("inv-1:1", customer="cus_sandbox_a", since=timezone.now()) == result
    assert gateway.retrieve(result.reference) == result
    assert gateway.retrieve("ch_sandbox_other") is None
    assert gateway.find("never-used") is None
    with pytest.raises(GatewayError):
        gateway.find("")
    with pytest.raises(GatewayError):
        gateway.retrieve("")


def test_refunds_whole_or_in_part_never_more_than_charged(gateway):
    charge = pay(gateway, card(gateway).token, amount=1000)
    part = gateway.refund(reference=charge.reference, idempotency_key="r1", amount_minor=300)
    assert (part.charge_reference, part.amount_minor, part.currency) == (charge.reference, 300, "USD")
    assert part.reference.startswith("re_sandbox_")
    with pytest.raises(GatewayError):
        gateway.refund(reference=charge.reference, idempotency_key="r2", amount_minor=701)
    rest = gateway.refund(reference=charge.reference, idempotency_key="r3")
    assert rest.amount_minor == 700
    with pytest.raises(GatewayError):
        gateway.refund(reference=charge.reference, idempotency_key="r4", amount_minor=1)
    assert list(SandboxRefund.objects.values_list("amount_minor", flat=True)) == [300, 700]


def test_a_refund_replay_returns_the_first_refund(gateway):
    charge = pay(gateway, card(gateway).token, amount=1000)
    first = gateway.refund(reference=charge.reference, idempotency_key="r1", amount_minor=400)
    assert gateway.refund(reference=charge.reference, idempotency_key="r1", amount_minor=400) == first
    assert gateway.refund(reference=charge.reference, idempotency_key="r1") == first
    with pytest.raises(IdempotencyConflict):
        gateway.refund(reference=charge.reference, idempotency_key="r1", amount_minor=500)
    other = pay(gateway, card(gateway).token, key="inv-2:1")
    with pytest.raises(IdempotencyConflict):
        gateway.refund(reference=other.reference, idempotency_key="r1")
    assert SandboxRefund.objects.count() == 1


def test_only_a_succeeded_charge_can_be_refunded(gateway, settings):
    declined = pay(gateway, card(gateway, "4000000000000002").token)
    with pytest.raises(GatewayError):
        gateway.refund(reference=declined.reference, idempotency_key="r1")
    with pytest.raises(GatewayError):
        gateway.refund(reference="ch_sandbox_unknown", idempotency_key="r2")
    settings.SANDBOX_CLEARING_SECONDS = 60
    pending = pay(gateway, sepa(gateway).token, key="inv-2:1", currency="EUR")
    with pytest.raises(GatewayError):
        gateway.refund(reference=pending.reference, idempotency_key="r3")
    with later(minutes=2):
        assert gateway.refund(reference=pending.reference, idempotency_key="r3").amount_minor == 12_500
    assert SandboxRefund.objects.count() == 1


def test_list_charges_gives_every_charge_oldest_first_with_debits_cleared(gateway):
    card_token, iban_token = card(gateway).token, sepa(gateway, "DE35370400440532013002").token
    start = timezone.now()
    for minutes, key in [(0, "b"), (1, "a"), (2, "c")]:
        with time_machine.travel(start + datetime.timedelta(minutes=minutes), tick=False):
            if key == "c":
                pay(gateway, iban_token, key=key, currency="EUR")
            else:
                pay(gateway, card_token, key=key)
    with time_machine.travel(start + datetime.timedelta(minutes=3), tick=False):
        page = gateway.list_charges()
    entries = page.entries
    assert page.next_cursor == ""
    assert all(isinstance(entry, LedgerEntry) for entry in entries)
    assert [entry.idempotency_key for entry in entries] == ["b", "a", "c"]
    assert [(entry.status, entry.decline_code) for entry in entries] == [
        (SUCCEEDED, ""),
        (SUCCEEDED, ""),
        (FAILED, "account_closed"),
    ]
    assert entries[0].token == card_token and entries[0].amount_minor == 12_500
    assert entries[0].customer == "cus_sandbox_a"
    assert entries[0].metadata == {"invoice": "INV-1", "attempt": "b"}
    assert [entry.attempt_key for entry in entries] == ["b", "a", "c"]


@pytest.mark.django_db(transaction=True)
def test_a_charge_survives_the_callers_rollback(gateway):
    token = card(gateway).token
    with pytest.raises(RuntimeError), transaction.atomic():
        pay(gateway, token)
        raise RuntimeError("the caller's transaction fails after the charge")
    assert SandboxCharge.objects.count() == 1


def _race(gateway, calls):
    """Run the calls in two threads at once; each thread's outcome, result or exception."""
    outcomes = [None, None]

    def run(index, call):
        try:
            outcomes[index] = call()
        except Exception as exc:
            outcomes[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return outcomes


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("amounts", "conflicts"), [((500, 500), 0), ((500, 600), 1)])
def test_two_calls_racing_on_one_key_make_one_charge(gateway, monkeypatch, amounts, conflicts):
    token = card(gateway).token
    barrier = threading.Barrier(2, timeout=10)
    real_outcome = charges.charge_outcome

    def outcome_once_both_have_looked(method, *, currency):
        # Both calls have found no charge for the key; now both insert.
        barrier.wait()
        return real_outcome(method, currency=currency)

    monkeypatch.setattr(charges, "charge_outcome", outcome_once_both_have_looked)
    outcomes = _race(gateway, [lambda a=a: pay(gateway, token, key="race", amount=a) for a in amounts])
    assert SandboxCharge.objects.filter(idempotency_key="race").count() == 1
    results = [o for o in outcomes if not isinstance(o, Exception)]
    assert sum(isinstance(o, IdempotencyConflict) for o in outcomes) == conflicts
    assert len(results) == 2 - conflicts
    assert {r.reference for r in results} == {SandboxCharge.objects.get().reference}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_once_per_key_fault_strikes_once_across_racing_calls(gateway):
    token = card(gateway, TIMEOUT_CARD).token
    barrier = threading.Barrier(2, timeout=10)

    def call():
        barrier.wait()
        return pay(gateway, token, key="race")

    outcomes = _race(gateway, [call, call])
    assert sum(isinstance(o, GatewayUnavailable) for o in outcomes) == 1
    assert [o.status for o in outcomes if not isinstance(o, Exception)] == [SUCCEEDED]
    assert SandboxCharge.objects.count() == SandboxFault.objects.count() == 1


def test_no_full_number_reaches_the_sandbox_tables_or_the_logs(gateway, caplog, monkeypatch, sleeps):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django.db.backends")
    monkeypatch.setattr(connections["sandbox"], "force_debug_cursor", True)  # log every SQL statement
    seen = []

    def attempt(call):
        try:
            seen.append(repr(call()))
        except Exception as exc:
            seen.append(repr(exc))

    for n, number in enumerate([*sandbox.TEST_CARDS, "4111111111111111", "4242424242424241"]):
        spaced = " ".join(number[i : i + 4] for i in range(0, len(number), 4))
        attempt(lambda number=spaced: card(gateway, number))
        token = SandboxToken.objects.order_by("-pk").values_list("token", flat=True).first()
        attempt(lambda token=token, n=n: pay(gateway, token, key=f"card-{n}"))
    for n, iban in enumerate([*sandbox.TEST_IBANS, "DE00370400440532013000"]):
        attempt(lambda iban=iban: sepa(gateway, iban))
        token = SandboxToken.objects.order_by("-pk").values_list("token", flat=True).first()
        attempt(lambda token=token, n=n: pay(gateway, token, key=f"sepa-{n}", currency="EUR"))
    for n, account in enumerate(sandbox.TEST_US_ACCOUNTS):
        attempt(lambda account=account: ach(gateway, account))
        attempt(lambda account=account: ach(gateway, account, routing="110000001"))
        token = SandboxToken.objects.order_by("-pk").values_list("token", flat=True).first()
        attempt(lambda token=token, n=n: pay(gateway, token, key=f"ach-{n}"))
    attempt(lambda: gateway.list_charges())

    rows = [
        repr(row)
        for model in apps.get_app_config("sandbox").get_models()
        for row in model.objects.values_list()
    ]
    dump = "\n".join([*rows, *seen, caplog.text])
    assert "INSERT INTO" in caplog.text and len(rows) > 40  # the dump really holds the writes
    numbers = [*sandbox.TEST_CARDS, "4111111111111111", "4242424242424241"]
    ibans = [*sandbox.TEST_IBANS, "DE00370400440532013000"]
    leaked = [
        secret
        for secret in [*numbers, *ibans, *(iban[4:] for iban in ibans), *sandbox.TEST_US_ACCOUNTS]
        if secret in dump or " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)) in dump
    ]
    assert leaked == []


def test_the_docs_list_every_test_number():
    text = (Path(__file__).resolve().parent.parent / "docs" / "sandbox.md").read_text().replace(" ", "")
    for number in [*sandbox.TEST_CARDS, *sandbox.TEST_IBANS, *sandbox.TEST_US_ACCOUNTS, "4242424242424241"]:
        assert number in text, number
