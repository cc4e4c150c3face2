"""Webhooks: the sandbox signs and delivers bank-debit outcomes; /webhooks/<gateway>/ verifies, stores each
event once and applies the gateway's current answer through the state machine."""

import datetime
import io
import json
import logging
import threading
from urllib.parse import urlsplit

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import connections
from django.test import Client
from django.utils import timezone

from accounts.models import AuditEvent
from invoices import webhooks
from invoices.models import Invoice, PaymentAttempt, SettlementRun, WebhookEvent
from invoices.settlement import settlement_run
from payments.gateways import get_gateway
from payments.gateways.base import GatewayEvent, GatewayUnavailable, WebhookSignatureError
from payments.sandbox import events
from payments.sandbox.models import SandboxCharge
from tests import utils
from tests.factories import AccountFactory, InvoiceFactory, SupportUserFactory

Status = PaymentAttempt.Status
URL = "/webhooks/sandbox/"
FAILS_LATE_ACH = "000444444440"  # pending, then insufficient_funds three minutes after clearing time
FAILS_LATE_IBAN = "DE08370400440532013003"
CLEARS_ACH = "000123456789"  # pending, then succeeded
FAILS_ACH = "000111111116"  # pending, then insufficient_funds


def later(**delta):
    return time_machine.travel(timezone.now() + datetime.timedelta(**delta), tick=False)


def through(client, sent=None):
    """A delivery transport that posts through Django's test client (and keeps what it sent)."""

    def transport(url, body, headers):
        if sent is not None:
            sent.append((url, body, dict(headers)))
        extra = {k: v for k, v in headers.items() if k.lower() != "content-type"}
        response = client.post(
            urlsplit(url).path, data=body, content_type=headers["Content-Type"], headers=extra
        )
        return response.status_code

    return transport


def deliver(client, sent=None, **kwargs):
    return list(events.events_deliver(transport=through(client, sent), **kwargs))


def settle():
    out = io.StringIO()
    call_command("settle_invoices", "--json", stdout=out)
    return json.loads(out.getvalue())


def post(client, payload, *, secret=None, at=None, header=None):
    body, headers = events.event_request(
        payload, secret=secret or events.settings.SANDBOX_WEBHOOK_SECRET, now=at
    )
    signature = headers[events.SIGNATURE_HEADER] if header is None else header
    return client.post(
        URL, data=body, content_type="application/json", headers={"Sandbox-Signature": signature}
    )


def event_for(charge, **changes):
    """The event the sandbox would send for ``charge``, with ``changes`` to its charge object (a
    late, early or contradicting event, as a real processor may deliver)."""
    payload = events.event_payload(charge)
    payload["data"]["object"].update(changes)
    if "status" in changes:
        payload["type"] = f"charge.{changes['status']}"
        payload["id"] = f"evt_test_{charge.reference}_{changes['status']}"
    return payload


@pytest.fixture(autouse=True)
def _clearing(settings):
    # A bank debit stays pending for 30 s (the late-failing ones 3 min more), so a test can look
    # at it before and after.
    settings.SANDBOX_CLEARING_SECONDS = 30


@pytest.fixture
def account():
    return AccountFactory(currency="USD")


@pytest.fixture
def applied(monkeypatch):
    """Every call of the state machine's apply step, in order."""
    calls = []
    lock = threading.Lock()
    real = webhooks.attempt_result_apply

    def spy(**kwargs):
        with lock:
            calls.append(kwargs["result"].status)
        return real(**kwargs)

    monkeypatch.setattr(webhooks, "attempt_result_apply", spy)
    return calls


def pending_debit(account, number=FAILS_LATE_ACH, *, backup=True):
    """An invoice whose primary is a bank debit, settled once: its attempt is pending."""
    utils.add_ach(account, number)
    card = utils.add_card(account, utils.SUCCEEDS) if backup else None
    invoice = InvoiceFactory(account=account)
    assert settle()["pending"] >= 1
    attempt = invoice.attempts.get()
    assert attempt.status == Status.PENDING
    return invoice, attempt, card


# Signatures ---------------------------------------------------------------------------------------


def test_a_signature_is_checked_against_the_body_the_secret_and_the_clock():
    body, secret, now = b'{"id":"evt_1"}', "whsec_test", timezone.now()
    header = events.signature_header(body, secret=secret, timestamp=int(now.timestamp()))

    events.signature_verify(body, header, secret=secret, now=now)
    events.signature_verify(body, f"{header},v1=00ff", secret=secret, now=now)  # one of several matches
    rotated = events.signature_header(body, secret="whsec_old", timestamp=int(now.timestamp()))
    events.signature_verify(body, f"{rotated},{header.split(',')[1]}", secret=secret, now=now)

    refused = {
        "tampered body": (body + b" ", header, now),
        "other secret": (
            body,
            events.signature_header(body, secret="x", timestamp=int(now.timestamp())),
            now,
        ),
        "no signature": (body, "", now),
        "no timestamp": (body, header.split(",")[1], now),
        "stale": (body, header, now + datetime.timedelta(minutes=5, seconds=1)),
        "from the future": (body, header, now - datetime.timedelta(minutes=5, seconds=1)),
    }
    for name, (b, h, at) in refused.items():
        with pytest.raises(WebhookSignatureError):
            events.signature_verify(b, h, secret=secret, now=at)
            pytest.fail(name)
    events.signature_verify(body, header, secret=secret, now=now + datetime.timedelta(minutes=4, seconds=59))


def test_without_a_secret_every_event_is_refused():
    body = b"{}"
    with pytest.raises(WebhookSignatureError, match="No webhook secret"):
        events.signature_verify(body, events.signature_header(body, secret="", timestamp=1), secret="")


def test_parse_event_reads_the_charge_from_a_signed_body_and_any_header_case():
    payload = {
        "id": "evt_sandbox_1",
        "type": "charge.failed",
        "created": 1_700_000_000,
        "data": {
            "object": {"id": "ch_sandbox_1", "idempotency_key": "k", "status": "failed", "decline_code": "x"}
        },
    }
    body, headers = events.event_request(payload, secret=events.settings.SANDBOX_WEBHOOK_SECRET)

    event = get_gateway("sandbox").parse_event(body, {k.lower(): v for k, v in headers.items()})

    assert event == GatewayEvent(
        id="evt_sandbox_1",
        type="charge.failed",
        created=datetime.datetime(2023, 11, 14, 22, 13, 20, tzinfo=datetime.UTC),
        reference="ch_sandbox_1",
        idempotency_key="k",
        status="failed",
        decline_code="x",
    )
    assert event.payload == payload
    with pytest.raises(WebhookSignatureError, match="not a sandbox event"):
        get_gateway("sandbox").parse_event(
            *events.event_request({"id": 1}, secret=events.settings.SANDBOX_WEBHOOK_SECRET)
        )


# The endpoint -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_bad_or_missing_signature_is_400_and_nothing_is_stored_or_applied(client, account, applied):
    invoice, attempt, _card = pending_debit(account, CLEARS_ACH, backup=False)
    charge = SandboxCharge.objects.get(idempotency_key=attempt.idempotency_key)
    payload = event_for(charge, status="succeeded")
    body, headers = events.event_request(payload, secret=events.settings.SANDBOX_WEBHOOK_SECRET)

    answers = [
        post(client, payload, secret="not-the-secret"),
        post(client, payload, header=""),
        client.post(URL, data=body, content_type="application/json"),
        client.post(
            URL,
            data=body + b" ",
            content_type="application/json",
            headers={"Sandbox-Signature": headers["Sandbox-Signature"]},
        ),
        post(client, payload, header="t=abc,v1=def"),
    ]

    assert [a.status_code for a in answers] == [400] * 5
    assert answers[0].json() == {"error": "invalid_signature"}
    assert not WebhookEvent.objects.exists()
    assert applied == []
    attempt.refresh_from_db()
    invoice.refresh_from_db()
    assert attempt.status == Status.PENDING and invoice.status == Invoice.Status.OPEN


@pytest.mark.django_db
def test_a_stale_timestamp_is_refused_so_a_captured_request_cannot_be_replayed(client, account):
    _invoice, attempt, _card = pending_debit(account, CLEARS_ACH, backup=False)
    captured = []
    with later(minutes=1):
        list(
            events.events_deliver(
                transport=lambda url, body, headers: captured.append((body, headers)) or 500
            )
        )
    [(body, headers)] = captured

    with later(minutes=7):
        answer = client.post(
            URL,
            data=body,
            content_type="application/json",
            headers={"Sandbox-Signature": headers["Sandbox-Signature"]},
        )

    assert answer.status_code == 400
    assert not WebhookEvent.objects.exists()
    attempt.refresh_from_db()
    assert attempt.status == Status.PENDING


@pytest.mark.django_db
def test_unknown_gateway_is_404_and_only_post_is_allowed(client):
    assert client.post("/webhooks/nope/", data=b"{}", content_type="application/json").status_code == 404
    assert client.get(URL).status_code == 405
    assert client.put(URL, data=b"{}").status_code == 405


@pytest.mark.django_db
def test_the_endpoint_needs_no_csrf_token_since_the_signature_proves_the_sender(account):
    _invoice, attempt, _card = pending_debit(account, CLEARS_ACH, backup=False)
    strict = Client(enforce_csrf_checks=True)

    with later(minutes=1):
        [delivery] = deliver(strict)

    assert delivery.delivered and delivery.status_code == 200
    attempt.refresh_from_db()
    assert attempt.status == Status.SUCCEEDED


@pytest.mark.django_db
def test_a_duplicate_event_is_stored_once_and_applied_once(client, account, applied):
    invoice, attempt, _card = pending_debit(account, CLEARS_ACH, backup=False)
    sent = []
    with later(minutes=1):
        [first] = deliver(client, sent)
        [(_url, body, headers)] = sent
        extra = {"Sandbox-Signature": headers["Sandbox-Signature"]}
        again = client.post(URL, data=body, content_type="application/json", headers=extra)

    assert first.status_code == 200 and again.status_code == 200
    assert again.json()["duplicate"] is True and again.json()["outcome"] == "applied"
    [stored] = WebhookEvent.objects.all()
    assert (stored.gateway, stored.type, stored.outcome) == ("sandbox", "charge.succeeded", "applied")
    assert stored.attempt_id == attempt.pk and stored.reference == attempt.gateway_reference
    assert stored.processed_at is not None
    assert applied == ["succeeded"]
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID and invoice.paid_by_attempt_id == attempt.pk
    assert AuditEvent.objects.filter(action=AuditEvent.Action.INVOICE_PAID).count() == 1
    assert utils.successful_charges().count() == 1


@pytest.mark.django_db
def test_a_failed_event_after_a_succeeded_one_changes_nothing(client, account):
    invoice, attempt, _card = pending_debit(account, CLEARS_ACH, backup=False)
    with later(minutes=1):
        deliver(client)
        charge = SandboxCharge.objects.get(idempotency_key=attempt.idempotency_key)
        late = post(client, event_for(charge, status="failed", decline_code="insufficient_funds"))

    assert late.status_code == 200 and late.json()["outcome"] == "unchanged"
    attempt.refresh_from_db()
    invoice.refresh_from_db()
    assert attempt.status == Status.SUCCEEDED and attempt.decline_code == ""
    assert invoice.status == Invoice.Status.PAID
    assert WebhookEvent.objects.count() == 2


@pytest.mark.django_db
def test_the_gateway_read_again_decides_not_what_the_event_says(client, account):
    invoice, attempt, _card = pending_debit(account, FAILS_ACH, backup=False)
    charge = SandboxCharge.objects.get(idempotency_key=attempt.idempotency_key)

    early = post(client, event_for(charge, status="failed", decline_code="insufficient_funds"))
    assert early.json()["outcome"] == "unchanged", "the debit is still clearing at the gateway"
    attempt.refresh_from_db()
    assert attempt.status == Status.PENDING

    with later(minutes=1):
        wrong = post(client, event_for(charge, status="succeeded"))

    assert wrong.status_code == 200 and wrong.json()["outcome"] == "applied"
    attempt.refresh_from_db()
    invoice.refresh_from_db()
    assert (attempt.status, attempt.decline_code, attempt.decline_class) == (
        Status.FAILED,
        "insufficient_funds",
        "soft",
    )
    assert invoice.status != Invoice.Status.PAID
    assert not utils.successful_charges().exists()


@pytest.mark.django_db
def test_an_event_for_a_charge_we_never_made_is_kept_and_answered_200(client):
    payload = {
        "id": "evt_sandbox_other",
        "type": "charge.succeeded",
        "created": int(timezone.now().timestamp()),
        "data": {
            "object": {"id": "ch_sandbox_unknown", "idempotency_key": "elsewhere-1", "status": "succeeded"}
        },
    }

    answer = post(client, payload)

    assert answer.status_code == 200 and answer.json()["outcome"] == "unmatched"
    assert WebhookEvent.objects.get().outcome == WebhookEvent.Outcome.UNMATCHED


@pytest.mark.django_db
def test_an_event_never_applies_another_charges_outcome_to_our_attempt(client, account):
    other = AccountFactory(currency="USD")
    utils.add_ach(other, CLEARS_ACH)
    other_invoice = InvoiceFactory(account=other)
    invoice, attempt, _card = pending_debit(account, FAILS_ACH, backup=False)
    charge = SandboxCharge.objects.get(idempotency_key=other_invoice.attempts.get().idempotency_key)

    with later(minutes=1):
        # Our attempt's key, with the other invoice's charge (which succeeded).
        answer = post(client, event_for(charge, idempotency_key=attempt.idempotency_key))

    assert answer.status_code == 200 and answer.json()["outcome"] == "unmatched"
    attempt.refresh_from_db()
    invoice.refresh_from_db()
    assert attempt.status == Status.PENDING and invoice.status == Invoice.Status.OPEN


@pytest.mark.django_db
def test_a_gateway_that_cannot_be_read_leaves_the_event_for_the_redelivery(client, account, monkeypatch):
    invoice, attempt, _card = pending_debit(account, CLEARS_ACH, backup=False)
    real = webhooks.charge_now

    def down(gateway, **kwargs):
        raise GatewayUnavailable("502 Bad Gateway")

    with later(minutes=1):
        get_gateway("sandbox").retrieve(attempt.gateway_reference)  # the debit clears
        charge = SandboxCharge.objects.get(idempotency_key=attempt.idempotency_key)
        monkeypatch.setattr(webhooks, "charge_now", down)
        first = post(client, events.event_payload(charge))
        stored = WebhookEvent.objects.get()
        assert (stored.outcome, stored.processed_at) == ("error", None)
        assert "could not be read" in stored.error
        monkeypatch.setattr(webhooks, "charge_now", real)
        [redelivery] = deliver(client)

    assert first.status_code == 503
    assert redelivery.status_code == 200
    stored = WebhookEvent.objects.get()
    assert stored.outcome == "applied" and stored.error == "" and stored.processed_at is not None
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID


@pytest.mark.django_db
def test_a_card_number_in_a_payload_is_never_stored(client):
    payload = {
        "id": "evt_sandbox_card",
        "type": "charge.succeeded",
        "created": int(timezone.now().timestamp()),
        "data": {
            "object": {
                "id": "ch_sandbox_x",
                "status": "succeeded",
                "description": "paid with 4242 4242 4242 4242 and 4000-0000-0000-0002",
                "reference": "invoice 1234567890123",  # not Luhn-valid: kept
            }
        },
    }

    assert post(client, payload).status_code == 200

    stored = json.dumps(WebhookEvent.objects.get().payload)
    assert "4242" not in stored and "0002" not in stored
    assert stored.count("[redacted]") == 2 and "1234567890123" in stored


@pytest.mark.django_db
def test_support_reads_webhook_events_in_admin_and_nobody_changes_them(client, account):
    pending_debit(account, CLEARS_ACH, backup=False)
    with later(minutes=1):
        deliver(client)
    stored = WebhookEvent.objects.get()
    client.force_login(SupportUserFactory())

    listing = client.get("/admin/invoices/webhookevent/")
    page = client.get(f"/admin/invoices/webhookevent/{stored.pk}/change/")

    assert listing.status_code == 200 and stored.event_id in listing.content.decode()
    assert page.status_code == 200 and "charge.succeeded" in page.content.decode()
    assert 'name="_save"' not in page.content.decode()
    assert client.get("/admin/invoices/webhookevent/add/").status_code == 403
    assert (
        client.post(f"/admin/invoices/webhookevent/{stored.pk}/delete/", {"post": "yes"}).status_code == 403
    )


# Delivery -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_event_is_announced_only_after_a_2xx_and_then_never_again(client, account):
    _invoice, attempt, _card = pending_debit(account, CLEARS_ACH, backup=False)
    charge = SandboxCharge.objects.get(idempotency_key=attempt.idempotency_key)

    assert deliver(client) == [], "not cleared yet: nothing to announce"

    def unreachable(url, body, headers):
        raise ConnectionRefusedError("connection refused")

    with later(minutes=1):
        [refused] = events.events_deliver(transport=lambda url, body, headers: 503)
        [lost] = events.events_deliver(transport=unreachable)
        charge.refresh_from_db()
        assert charge.announced_at is None
        assert not refused.delivered and refused.status_code == 503
        assert not lost.delivered and "refused" in lost.error
        [delivered] = deliver(client)
        again = deliver(client)

    assert delivered.delivered and delivered.event_id == refused.event_id == lost.event_id
    assert again == []
    charge.refresh_from_db()
    assert charge.status == SandboxCharge.Status.SUCCEEDED and charge.announced_at is not None


@pytest.mark.django_db
def test_an_event_names_the_charge_and_never_the_token(account):
    _invoice, attempt, _card = pending_debit(account, FAILS_ACH, backup=False)
    sent = []
    with later(minutes=1):
        list(events.events_deliver(transport=lambda url, body, headers: sent.append((url, body)) or 200))
    [(url, body)] = sent
    method = attempt.method

    payload = json.loads(body)
    assert url == "http://127.0.0.1:8000/webhooks/sandbox/"
    assert payload["type"] == "charge.failed"
    assert payload["data"]["object"] == {
        "object": "charge",
        "id": attempt.gateway_reference,
        "idempotency_key": attempt.idempotency_key,
        "status": "failed",
        "decline_code": "insufficient_funds",
        "amount": 12_500,
        "currency": "USD",
    }
    assert method.token.encode() not in body and FAILS_ACH.encode() not in body


@pytest.mark.django_db
def test_the_command_delivers_and_exits_1_when_an_event_was_not_delivered(client, account, monkeypatch):
    pending_debit(account, CLEARS_ACH, backup=False)
    answers = iter([500, None])
    transport = through(client)

    def flaky(url, body, headers):
        code = next(answers)
        return transport(url, body, headers) if code is None else code

    monkeypatch.setattr(events, "http_transport", flaky)
    with later(minutes=1):
        with pytest.raises(CommandError) as failed:
            call_command("sandbox_deliver_events", stdout=io.StringIO())
        out = io.StringIO()
        call_command("sandbox_deliver_events", "--json", stdout=out)

    assert failed.value.returncode == 1
    report = json.loads(out.getvalue())
    assert (report["considered"], report["delivered"], report["failed"]) == (1, 1, 0)
    assert report["events"][0]["status"] == 200
    with pytest.raises(CommandError) as bad:
        call_command("sandbox_deliver_events", "--url", "ftp://example.com/")
    assert bad.value.returncode == 2


# End to end ---------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("bank", ["ach", "sepa"])
def test_a_debit_that_stays_pending_then_fails_is_announced_and_the_next_run_charges_the_backup(
    client, caplog, bank
):
    caplog.set_level(logging.DEBUG)
    if bank == "ach":
        account = AccountFactory(currency="USD")
        utils.add_ach(account, FAILS_LATE_ACH)
    else:
        account = AccountFactory(currency="EUR")
        utils.add_sepa(account, FAILS_LATE_IBAN)
    backup = utils.add_card(account, utils.SUCCEEDS)
    invoice = InvoiceFactory(account=account)
    sent = []

    assert settle()["pending"] >= 1
    attempt = invoice.attempts.get()
    assert attempt.status == Status.PENDING
    assert deliver(client, sent) == [], "still clearing: nothing is announced"

    with later(minutes=4):
        [delivery] = deliver(client, sent)
        assert delivery.delivered
        attempt.refresh_from_db()
        invoice.refresh_from_db()
        assert (attempt.status, attempt.decline_code) == (Status.FAILED, "insufficient_funds")
        assert invoice.is_collectable and invoice.next_attempt_at <= timezone.now(), "due again now"
        assert not utils.successful_charges().exists()

        summary = settle()

    invoice.refresh_from_db()
    assert summary["paid_by_backup"] == 1
    assert invoice.status == Invoice.Status.PAID and invoice.paid_by_method == backup
    assert list(invoice.attempts.order_by("sequence").values_list("position", "status")) == [
        (1, Status.FAILED),
        (2, Status.SUCCEEDED),
    ]
    assert utils.successful_charges().count() == 1
    assert WebhookEvent.objects.get().outcome == WebhookEvent.Outcome.APPLIED
    # No full number in what the gateway posted, what we stored, or any log line.
    stored = json.dumps(list(WebhookEvent.objects.values_list("payload", flat=True)))
    for number in (utils.SUCCEEDS, FAILS_LATE_ACH, FAILS_LATE_IBAN):
        assert all(number.encode() not in body for _url, body, _headers in sent)
        assert number not in stored and number not in caplog.text


@pytest.mark.django_db(transaction=True)
def test_a_debit_that_clears_pays_the_invoice_through_the_webhook_alone(client, settings):
    settings.SANDBOX_CLEARING_SECONDS = 3600
    account = AccountFactory(currency="USD")
    invoice, attempt, _card = pending_debit(account, CLEARS_ACH)
    runs = SettlementRun.objects.count()

    with later(hours=2):
        [delivery] = deliver(client)

    assert delivery.delivered
    invoice.refresh_from_db()
    attempt.refresh_from_db()
    assert attempt.status == Status.SUCCEEDED
    assert invoice.status == Invoice.Status.PAID and invoice.paid_by_attempt_id == attempt.pk
    assert not invoice.paid_by_backup
    assert SettlementRun.objects.count() == runs, "no settlement run was needed"
    assert utils.successful_charges().count() == 1


# Real concurrency (PostgreSQL) --------------------------------------------------------------------


def _at_once(*works):
    """Run each of ``works`` in its own thread (and database connection), all released together."""
    barrier = threading.Barrier(len(works))
    results, errors = [], []

    def run(work):
        try:
            barrier.wait()
            results.append(work())
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(work,)) for work in works]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return results


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_same_event_delivered_four_times_at_once_is_stored_once_and_applied_once(applied):
    account = AccountFactory(currency="USD")
    invoice, attempt, _card = pending_debit(account, CLEARS_ACH, backup=False)
    with later(minutes=1):
        charge = SandboxCharge.objects.get(idempotency_key=attempt.idempotency_key)
        get_gateway("sandbox").retrieve(charge.reference)  # clears it
        charge.refresh_from_db()
        body, headers = events.event_request(
            events.event_payload(charge), secret=events.settings.SANDBOX_WEBHOOK_SECRET
        )
        extra = {"Sandbox-Signature": headers["Sandbox-Signature"]}

        codes = _at_once(
            *[
                lambda: (
                    Client().post(URL, data=body, content_type="application/json", headers=extra).status_code
                )
            ]
            * 4
        )

    assert codes == [200] * 4
    assert WebhookEvent.objects.count() == 1
    assert applied == ["succeeded"]
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    assert AuditEvent.objects.filter(action=AuditEvent.Action.INVOICE_PAID).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_failure_announced_while_a_run_resolves_the_same_debit_charges_the_backup_once():
    account = AccountFactory(currency="USD")
    invoice, _attempt, backup = pending_debit(account, FAILS_LATE_ACH)

    with later(minutes=4):
        _at_once(lambda: deliver(Client()), settlement_run)
        settlement_run()  # whichever went first, a later run finds nothing left to charge twice

    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID and invoice.paid_by_method == backup
    assert utils.successful_charges().count() == 1
    assert invoice.attempts.filter(status=Status.SUCCEEDED).count() == 1
    assert not invoice.attempts.filter(status__in=PaymentAttempt.UNRESOLVED).exists()
