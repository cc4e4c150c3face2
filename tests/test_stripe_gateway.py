"""The Stripe gateway against recorded Stripe responses (tests/fixtures/stripe/, shaped as Stripe's API
reference documents them): every row of the outcome table, the request each call makes, lookups,
paging, refunds, idempotent replays, 429, 5xx and timeouts. Nothing here can reach the network: the
client points at a port on this machine, and ``responses`` answers every request (an unanswered one
is a connection error)."""

import datetime
import json
import re
import types
import urllib.parse
from pathlib import Path

import pytest
import requests
import responses

from payments import declines
from payments.gateways.base import ChargeStatus, GatewayError, GatewayUnavailable, InvalidPaymentDetails
from payments.gateways.stripe import StripeGateway
from payments.gateways.stripe.outcomes import OUTCOMES, UNKNOWN

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "stripe"
LOCAL_API = "http://127.0.0.1:9"  # the discard port: nothing answers there but ``responses``
INTENTS = f"{LOCAL_API}/v1/payment_intents"
CUSTOMER = "cus_RfT4xY2aBcD9eF"
KEY = "att-INV-0001-1"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


@pytest.fixture(autouse=True)
def stripe_settings(settings):
    settings.STRIPE_SECRET_KEY = "sk_test_offline"
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_offline"
    settings.STRIPE_WEBHOOK_SECRET = "whsec_offline"
    settings.STRIPE_API_BASE = LOCAL_API
    return settings


@pytest.fixture
def api():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock
        # Every request this test made went to this machine.
        assert all(call.request.url.startswith(LOCAL_API + "/") for call in mock.calls)


@pytest.fixture
def gateway():
    return StripeGateway()


def form(call) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(call.request.body or urllib.parse.urlsplit(call.request.url).query))


def charge(gateway, **overrides):
    params = {
        "customer": CUSTOMER,
        "method_token": "pm_1QcardVisa4242",
        "amount_minor": 2500,
        "currency": "USD",
        "idempotency_key": KEY,
        "metadata": {"invoice": "INV-0001", "attempt": KEY},
        "timeout": 5,
    }
    return gateway.charge(**{**params, **overrides})


# The request ------------------------------------------------------------------------------------


def test_a_charge_is_one_confirmed_off_session_payment_intent_with_the_attempts_key(api, gateway):
    api.post(INTENTS, json=fixture("payment_intent_succeeded"))
    references = []
    result = charge(gateway, on_reference=references.append)
    [call] = api.calls
    assert call.request.headers["Idempotency-Key"] == KEY
    assert call.request.headers["Authorization"] == "Bearer sk_test_offline"
    assert form(call) == {
        "amount": "2500",
        "currency": "usd",
        "customer": CUSTOMER,
        "payment_method": "pm_1QcardVisa4242",
        "payment_method_types[0]": "card",
        "confirm": "true",
        "off_session": "true",
        "metadata[invoice]": "INV-0001",
        "metadata[attempt]": KEY,
    }
    assert references == ["pi_3QsucceededA1"]
    assert (result.reference, result.amount_minor, result.currency, result.idempotency_key) == (
        "pi_3QsucceededA1",
        2500,
        "USD",
        KEY,
    )


def test_a_euro_charge_may_be_a_sepa_debit(api, gateway):
    api.post(INTENTS, json=fixture("payment_intent_processing"))
    charge(gateway, method_token="pm_1QsepaDE3000", currency="EUR")
    sent = form(api.calls[0])
    assert (sent["currency"], sent["payment_method_types[0]"], sent["payment_method_types[1]"]) == (
        "eur",
        "card",
        "sepa_debit",
    )


# One test per row of the outcome table -----------------------------------------------------------


def row(name):
    """Marks the row of OUTCOMES a test covers (see the last test of this section)."""
    return name


def test_succeeded_is_paid(api, gateway):
    api.post(INTENTS, json=fixture("payment_intent_succeeded"))
    assert OUTCOMES[row("succeeded")] == ChargeStatus.SUCCEEDED
    assert charge(gateway).status == ChargeStatus.SUCCEEDED


def test_processing_is_pending(api, gateway):
    api.post(INTENTS, json=fixture("payment_intent_processing"))
    assert OUTCOMES[row("processing")] == ChargeStatus.PENDING
    result = charge(gateway, currency="EUR")
    assert (result.status, result.reference) == (ChargeStatus.PENDING, "pi_3QprocessingB2")


def test_requires_action_is_requires_action_with_the_secret_to_complete_it(api, gateway):
    api.post(INTENTS, json=fixture("payment_intent_requires_action"))
    assert OUTCOMES[row("requires_action")] == ChargeStatus.REQUIRES_ACTION
    result = charge(gateway)
    assert result.status == ChargeStatus.REQUIRES_ACTION
    assert result.action_secret == "pi_3QrequiresActC3_secret_Vn3Qm2R8kX"


def test_a_card_error_authentication_required_is_requires_action(api, gateway):
    api.post(INTENTS, status=402, json=fixture("card_error_authentication_required"))
    assert OUTCOMES[row("authentication_required")] == ChargeStatus.REQUIRES_ACTION
    references = []
    result = charge(gateway, on_reference=references.append)
    assert (result.status, result.reference, result.decline_code) == (
        ChargeStatus.REQUIRES_ACTION,
        "pi_3QauthReqH8",
        "",
    )
    assert result.action_secret == "pi_3QauthReqH8_secret_Vn3Qm2R8kX"
    assert references == ["pi_3QauthReqH8"]


@pytest.mark.parametrize(
    ("name", "code", "decline_class"),
    [
        ("card_error_insufficient_funds", "insufficient_funds", declines.SOFT),
        ("card_error_lost_card", "lost_card", declines.HARD),
        # The issuer's advice never to retry makes any decline hard.
        ("card_error_do_not_try_again", "generic_decline:do_not_try_again", declines.HARD),
    ],
)
def test_a_card_error_is_failed_with_stripes_decline_code_and_its_class(
    api, gateway, name, code, decline_class
):
    api.post(INTENTS, status=402, json=fixture(name))
    assert OUTCOMES[row("card_error")] == ChargeStatus.FAILED
    references = []
    result = charge(gateway, on_reference=references.append)
    assert (result.status, result.decline_code) == (ChargeStatus.FAILED, code)
    assert declines.decline_class(result.decline_code) == decline_class
    assert result.reference == references[0] and result.reference.startswith("pi_3Qdeclined")
    assert result.message


def test_a_request_refused_before_any_charge_is_failed(api, gateway):
    api.post(INTENTS, status=400, json=fixture("payment_method_missing"))
    assert OUTCOMES[row("invalid_request_error")] == ChargeStatus.FAILED
    result = charge(gateway)
    assert (result.status, result.decline_code, result.reference) == (
        ChargeStatus.FAILED,
        "resource_missing",
        "",
    )


@pytest.mark.parametrize(
    ("status", "name", "table_row"),
    [
        (400, "idempotency_error", row("idempotency_error")),  # the key was first used with other parameters
        (409, "idempotency_in_progress", row("idempotency_error")),  # a call with the key is still running
        (429, "rate_limit", row("rate_limit_error")),
        (500, "api_error", row("api_error")),
        (502, "api_error", row("api_error")),
        (503, "api_error", row("api_error")),
    ],
)
def test_errors_whose_outcome_is_unknown_raise_gateway_unavailable(api, gateway, status, name, table_row):
    api.post(INTENTS, status=status, json=fixture(name))
    assert OUTCOMES[table_row] is UNKNOWN
    references = []
    with pytest.raises(GatewayUnavailable):
        charge(gateway, on_reference=references.append)
    assert references == []
    assert len(api.calls) == 1  # the library retries nothing: max_network_retries=0


@pytest.mark.parametrize(
    "failure",
    [
        requests.exceptions.ReadTimeout("read timed out"),
        requests.exceptions.ConnectTimeout("connect timed out"),
        requests.exceptions.ConnectionError("connection reset by peer"),
    ],
)
def test_timeouts_and_connection_errors_raise_gateway_unavailable(api, gateway, failure):
    api.post(INTENTS, body=failure)
    assert OUTCOMES[row("api_connection_error")] is UNKNOWN
    with pytest.raises(GatewayUnavailable):
        charge(gateway)
    assert len(api.calls) == 1


@pytest.mark.parametrize("name", [row("requires_confirmation"), row("requires_capture")])
def test_a_payment_intent_in_a_state_we_never_leave_one_in_is_unknown(api, gateway, name):
    body = {**fixture("payment_intent_requires_confirmation"), "status": name}
    api.post(INTENTS, json=body)
    assert OUTCOMES[name] is UNKNOWN
    with pytest.raises(GatewayUnavailable):
        charge(gateway)


def test_a_declined_payment_intent_read_back_is_failed_with_its_decline_code(api, gateway):
    intent = fixture("payment_intent_list_page2")["data"][0]
    api.get(f"{INTENTS}/pi_3Qlist03", json=intent)
    assert OUTCOMES[row("requires_payment_method")] == ChargeStatus.FAILED
    result = gateway.retrieve("pi_3Qlist03")
    assert (result.status, result.decline_code, result.idempotency_key) == (
        ChargeStatus.FAILED,
        "insufficient_funds",
        "att-INV-0003-1",
    )


def test_a_canceled_payment_intent_read_back_is_failed(api, gateway):
    body = {
        **fixture("payment_intent_requires_action"),
        "status": "canceled",
        "cancellation_reason": "abandoned",
    }
    api.get(f"{INTENTS}/pi_3QrequiresActC3", json=body)
    assert OUTCOMES[row("canceled")] == ChargeStatus.FAILED
    result = gateway.retrieve("pi_3QrequiresActC3")
    assert (result.status, result.decline_code, result.action_secret) == (ChargeStatus.FAILED, "canceled", "")


def test_every_row_of_the_outcome_table_has_its_test():
    """A row added to the table without a test here fails; so does a test of a row that is gone."""
    tested = set(re.findall(r'row\("(\w+)"\)', Path(__file__).read_text()))
    assert tested == set(OUTCOMES)


# Replays ----------------------------------------------------------------------------------------


def test_repeating_a_charge_with_its_key_sends_the_same_key_and_gets_stripes_first_answer(api, gateway):
    # Stripe answers a repeated key with the first response, even a decline; nothing new is charged.
    api.post(INTENTS, status=500, json=fixture("api_error"))
    api.post(INTENTS, status=402, json=fixture("card_error_insufficient_funds"))
    api.post(
        INTENTS,
        status=402,
        json=fixture("card_error_insufficient_funds"),
        headers={"Idempotent-Replayed": "true"},
    )
    with pytest.raises(GatewayUnavailable):
        charge(gateway)
    first, replay = charge(gateway), charge(gateway)
    assert first == replay and first.status == ChargeStatus.FAILED
    assert [call.request.headers["Idempotency-Key"] for call in api.calls] == [KEY, KEY, KEY]


def test_a_key_reused_with_other_parameters_is_unknown_not_a_new_charge(api, gateway):
    api.post(INTENTS, status=400, json=fixture("idempotency_error"))
    with pytest.raises(GatewayUnavailable, match="idempotency_error"):
        charge(gateway, amount_minor=9999)


# Other errors -----------------------------------------------------------------------------------


def test_a_wrong_key_is_a_gateway_error_not_an_unknown_outcome(api, gateway):
    api.post(INTENTS, status=401, json=fixture("authentication_error"))
    with pytest.raises(GatewayError) as caught:
        charge(gateway)
    assert not isinstance(caught.value, GatewayUnavailable)


def test_a_request_nobody_recorded_never_leaves_the_machine(gateway):
    with responses.RequestsMock() as mock:
        with pytest.raises(GatewayUnavailable):
            charge(gateway)
        assert mock.calls[0].request.url.startswith(LOCAL_API)


# Lookups ----------------------------------------------------------------------------------------


def test_retrieve_reads_the_payment_intent_by_id(api, gateway):
    api.get(f"{INTENTS}/pi_3QsucceededA1", json=fixture("payment_intent_succeeded"))
    result = gateway.retrieve("pi_3QsucceededA1")
    assert (result.status, result.reference, result.idempotency_key) == (
        ChargeStatus.SUCCEEDED,
        "pi_3QsucceededA1",
        KEY,
    )


def test_retrieve_of_a_payment_intent_stripe_does_not_have_is_none(api, gateway):
    api.get(f"{INTENTS}/pi_3Qnothere", status=404, json=fixture("payment_intent_missing"))
    assert gateway.retrieve("pi_3Qnothere") is None


def test_retrieve_without_an_answer_is_unknown(api, gateway):
    api.get(f"{INTENTS}/pi_3QsucceededA1", status=503, json=fixture("api_error"))
    with pytest.raises(GatewayUnavailable):
        gateway.retrieve("pi_3QsucceededA1")


def test_find_lists_the_customers_payment_intents_since_the_attempt_and_matches_the_attempt_key(api, gateway):
    api.get(INTENTS, json=fixture("payment_intent_list_page1"))
    api.get(INTENTS, json=fixture("payment_intent_list_page2"))
    since = datetime.datetime(2026, 12, 2, 0, 0, tzinfo=datetime.UTC)
    result = gateway.find("att-INV-0003-1", customer=CUSTOMER, since=since)
    assert (result.reference, result.status, result.decline_code) == (
        "pi_3Qlist03",
        ChargeStatus.FAILED,
        "insufficient_funds",
    )
    first, second = (form(call) for call in api.calls)
    assert first == {
        "limit": "100",
        "customer": CUSTOMER,
        "created[gte]": str(int(since.timestamp()) - 300),  # a few minutes of clock difference
    }
    assert second == {**first, "starting_after": "pi_3Qlist02"}
    assert not any("/search" in call.request.url for call in api.calls)


def test_find_of_a_key_on_no_payment_intent_is_none_after_the_last_page(api, gateway):
    api.get(INTENTS, json=fixture("payment_intent_list_page1"))
    api.get(INTENTS, json=fixture("payment_intent_list_page2"))
    assert gateway.find("att-never-made", customer=CUSTOMER) is None


def test_find_without_an_answer_is_unknown_never_none(api, gateway):
    api.get(INTENTS, json=fixture("payment_intent_list_page1"))
    api.get(INTENTS, status=429, json=fixture("rate_limit"))
    with pytest.raises(GatewayUnavailable):
        gateway.find("att-never-made", customer=CUSTOMER)


def test_list_charges_pages_with_starting_after_since_a_time(api, gateway):
    api.get(INTENTS, json=fixture("payment_intent_list_page1"))
    api.get(INTENTS, json=fixture("payment_intent_list_page2"))
    since = datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)
    first = gateway.list_charges(since=since, limit=2000)
    assert [entry.reference for entry in first.entries] == ["pi_3Qlist00", "pi_3Qlist01", "pi_3Qlist02"]
    assert first.next_cursor == "pi_3Qlist02"
    entry = first.entries[0]
    assert (entry.attempt_key, entry.status, entry.customer, entry.amount_minor, entry.currency) == (
        "att-INV-0000-1",
        ChargeStatus.SUCCEEDED,
        CUSTOMER,
        2500,
        "USD",
    )
    assert entry.created_at == datetime.datetime.fromtimestamp(1764640000, tz=datetime.UTC)
    second = gateway.list_charges(since=since, cursor=first.next_cursor, limit=2000)
    # The PaymentIntent never confirmed is no charge.
    assert [entry.reference for entry in second.entries] == ["pi_3Qlist03"] and second.next_cursor == ""
    assert form(api.calls[0]) == {"limit": "100", "created[gte]": str(int(since.timestamp()))}
    assert form(api.calls[1])["starting_after"] == "pi_3Qlist02"


# Refunds ----------------------------------------------------------------------------------------


def test_a_refund_is_made_with_its_own_idempotency_key(api, gateway):
    api.post(f"{LOCAL_API}/v1/refunds", json=fixture("refund"))
    refund = gateway.refund(reference="pi_3QsucceededA1", idempotency_key="refund-1", amount_minor=1000)
    assert (refund.reference, refund.charge_reference, refund.amount_minor, refund.currency) == (
        "re_3QrefundJ10",
        "pi_3QsucceededA1",
        1000,
        "USD",
    )
    assert api.calls[0].request.headers["Idempotency-Key"] == "refund-1"
    # The key also goes in the metadata: found among the charge's refunds once Stripe forgot it.
    assert form(api.calls[0]) == {
        "payment_intent": "pi_3QsucceededA1",
        "amount": "1000",
        "metadata[refund]": "refund-1",
    }


def test_a_charges_refunds_are_listed_page_by_page_with_our_key(api, gateway):
    first = {**fixture("refund"), "metadata": {"refund": "refund-7-1"}}
    second = {**fixture("refund"), "id": "re_3QrefundJ11", "amount": 500, "status": "failed"}
    api.get(f"{LOCAL_API}/v1/refunds", json={"object": "list", "data": [first], "has_more": True})
    api.get(f"{LOCAL_API}/v1/refunds", json={"object": "list", "data": [second], "has_more": False})
    refunds = gateway.refunds("pi_3QsucceededA1")
    assert [(r.reference, r.amount_minor, r.succeeded, r.idempotency_key) for r in refunds] == [
        ("re_3QrefundJ10", 1000, True, "refund-7-1"),
        ("re_3QrefundJ11", 500, False, ""),
    ]
    assert form(api.calls[0]) == {"payment_intent": "pi_3QsucceededA1", "limit": "100"}
    assert form(api.calls[1])["starting_after"] == "re_3QrefundJ10"


# Cancelling a charge that waits for the customer ------------------------------------------------


def test_a_waiting_payment_intent_is_cancelled(api, gateway):
    cancelled = {**fixture("payment_intent_requires_action"), "status": "canceled", "next_action": None}
    api.post(f"{INTENTS}/pi_3QrequiresActC3/cancel", json=cancelled)
    result = gateway.cancel("pi_3QrequiresActC3")
    assert (result.status, result.decline_code) == (ChargeStatus.FAILED, "canceled")


def test_a_payment_intent_that_succeeded_meanwhile_is_reported_as_such(api, gateway):
    api.post(
        f"{INTENTS}/pi_3QsucceededA1/cancel",
        status=400,
        json={"error": {"type": "invalid_request_error", "code": "payment_intent_unexpected_state"}},
    )
    api.get(f"{INTENTS}/pi_3QsucceededA1", json=fixture("payment_intent_succeeded"))
    assert gateway.cancel("pi_3QsucceededA1").status == ChargeStatus.SUCCEEDED


def test_cancelling_a_missing_payment_intent_finds_none_and_a_5xx_is_unknown(api, gateway):
    api.post(f"{INTENTS}/pi_missing/cancel", status=404, json=fixture("payment_intent_missing"))
    assert gateway.cancel("pi_missing") is None
    api.post(f"{INTENTS}/pi_3QrequiresActC3/cancel", status=500, json=fixture("api_error"))
    with pytest.raises(GatewayUnavailable):
        gateway.cancel("pi_3QrequiresActC3")


# A saved method read again ------------------------------------------------------------------------


def test_a_saved_method_is_read_again_with_its_customer(api, gateway):
    detached = {**fixture("payment_method_card"), "customer": None}
    api.get(f"{LOCAL_API}/v1/payment_methods/pm_1QcardVisa4242", json=fixture("payment_method_card"))
    api.get(f"{LOCAL_API}/v1/payment_methods/pm_1QcardVisa4242", json=detached)
    api.get(f"{LOCAL_API}/v1/payment_methods/pm_gone", status=404, json=fixture("payment_method_missing"))
    saved = gateway.saved_method("pm_1QcardVisa4242")
    assert (saved.customer, saved.method.last4, saved.method.exp_month, saved.method.exp_year) == (
        CUSTOMER,
        "4242",
        8,
        2031,
    )
    assert gateway.saved_method("pm_1QcardVisa4242").customer == ""
    assert gateway.saved_method("pm_gone") is None


# Customers and saving methods ---------------------------------------------------------------------


def test_a_customer_is_created_per_account(api, gateway):
    api.post(f"{LOCAL_API}/v1/customers", json=fixture("customer"))
    assert gateway.customer_create(account_id=1, name="Example Ltd", email="billing@example.com") == CUSTOMER
    assert form(api.calls[0]) == {
        "metadata[account]": "1",
        "name": "Example Ltd",
        "email": "billing@example.com",
    }


@pytest.mark.parametrize("kind", ["card", "sepa_debit"])
def test_start_setup_makes_an_off_session_setup_intent_and_hands_the_page_its_secret(api, gateway, kind):
    api.post(f"{LOCAL_API}/v1/setup_intents", json=fixture("setup_intent_created"))
    setup = gateway.start_setup(account=types.SimpleNamespace(pk=1), kind=kind, customer=CUSTOMER)
    assert setup.in_browser
    assert (setup.kind, setup.client_secret, setup.publishable_key, setup.reference) == (
        kind,
        "seti_1QsetupI9_secret_Rt7Kp",
        "pk_test_offline",
        "seti_1QsetupI9",
    )
    assert form(api.calls[0]) == {
        "customer": CUSTOMER,
        "usage": "off_session",
        "payment_method_types[0]": kind,
        "metadata[account]": "1",
    }


def test_start_setup_of_a_kind_stripe_does_not_save_is_refused(gateway):
    with pytest.raises(GatewayError, match="not 'ach_debit'"):
        gateway.start_setup(account=types.SimpleNamespace(pk=1), kind="ach_debit", customer=CUSTOMER)


def test_finish_setup_reads_the_card_back_from_the_setup_intent_without_its_number(api, gateway):
    api.get(f"{LOCAL_API}/v1/setup_intents/seti_1QsetupI9", json=fixture("setup_intent_succeeded"))
    api.get(f"{LOCAL_API}/v1/payment_methods/pm_1QcardVisa4242", json=fixture("payment_method_card"))
    method = gateway.finish_setup(account=None, kind="card", customer=CUSTOMER, reference="seti_1QsetupI9")
    assert (method.kind, method.token, method.brand, method.last4, method.exp_month, method.exp_year) == (
        "card",
        "pm_1QcardVisa4242",
        "Visa",
        "4242",
        8,
        2031,
    )
    assert method.fingerprint == "Xt5EWLLDS7FJjR1c"


def test_finish_setup_reads_a_sepa_debit_by_payment_method_id(api, gateway):
    api.get(f"{LOCAL_API}/v1/payment_methods/pm_1QsepaDE3000", json=fixture("payment_method_sepa_debit"))
    method = gateway.finish_setup(
        account=None, kind="sepa_debit", customer=CUSTOMER, reference="pm_1QsepaDE3000"
    )
    assert (method.kind, method.last4, method.fingerprint, method.bank_name) == (
        "sepa_debit",
        "3000",
        "vifs0Ho7vwRn1Miu",
        "37040044",
    )


@pytest.mark.parametrize(
    ("kind", "customer", "reference"),
    [
        ("sepa_debit", CUSTOMER, "pm_1QcardVisa4242"),  # another kind than the page's
        ("card", "cus_someoneelse", "pm_1QcardVisa4242"),  # another customer's method
        ("card", CUSTOMER, "tok_visa"),  # not a PaymentMethod
    ],
)
def test_finish_setup_refuses_a_method_that_is_not_this_customers_of_this_kind(
    api, gateway, kind, customer, reference
):
    if reference.startswith("pm_"):
        api.get(f"{LOCAL_API}/v1/payment_methods/{reference}", json=fixture("payment_method_card"))
    with pytest.raises(InvalidPaymentDetails) as caught:
        gateway.finish_setup(account=None, kind=kind, customer=customer, reference=reference)
    assert caught.value.code == "setup_failed"


def test_finish_setup_attaches_a_method_not_yet_attached(api, gateway):
    detached = {**fixture("payment_method_card"), "customer": None}
    api.get(f"{LOCAL_API}/v1/payment_methods/pm_1QcardVisa4242", json=detached)
    api.post(
        f"{LOCAL_API}/v1/payment_methods/pm_1QcardVisa4242/attach", json={**detached, "customer": CUSTOMER}
    )
    gateway.finish_setup(account=None, kind="card", customer=CUSTOMER, reference="pm_1QcardVisa4242")
    assert form(api.calls[1]) == {"customer": CUSTOMER}
