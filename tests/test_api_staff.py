"""The operator's invoice issuing: POST /api/staff/invoices/, one or many, idempotent on the number."""

import pytest
from rest_framework.test import APIClient

from accounts.models import AuditEvent
from invoices.models import Invoice
from tests.factories import AccountFactory, InvoiceFactory, StaffUserFactory, TokenFactory

pytestmark = pytest.mark.django_db

URL = "/api/staff/invoices/"


@pytest.fixture
def client():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {TokenFactory(user=StaffUserFactory(username='ops')).key}")
    return client


@pytest.fixture
def account():
    return AccountFactory(currency="JPY")


def _invoice(account, number="2026-11-0001", **changes):
    return {
        "account": account.pk,
        "number": number,
        "currency": "JPY",
        "amount_minor": 12000,
        "issued_on": "2026-11-01",
        "due_on": "2026-11-15",
        "description": "November usage",
        **changes,
    }


def test_issuing_one_invoice(client, account):
    response = client.post(URL, _invoice(account), format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["created"] is True
    assert body["account"] == account.pk
    invoice = Invoice.objects.get(number="2026-11-0001")
    assert (invoice.account, invoice.amount_minor, invoice.currency, invoice.status) == (
        account,
        12000,
        "JPY",
        "open",
    )
    event = AuditEvent.objects.get(action="invoice.issued", object_id=str(invoice.pk))
    assert event.actor_label == "staff: ops"


def test_sending_it_again_changes_nothing(client, account):
    client.post(URL, _invoice(account), format="json")
    response = client.post(URL, _invoice(account), format="json")
    assert response.status_code == 200
    assert response.json()["created"] is False
    assert Invoice.objects.count() == 1


def test_the_same_number_with_other_details_is_a_conflict(client, account):
    client.post(URL, _invoice(account), format="json")
    response = client.post(URL, _invoice(account, amount_minor=13000), format="json")
    assert response.status_code == 409
    assert response.json()["detail"] == "Invoice 2026-11-0001 already exists with different details."
    assert Invoice.objects.get().amount_minor == 12000


def test_issuing_many(client, account):
    InvoiceFactory(account=account, **{k: v for k, v in _invoice(account, "B-1").items() if k != "account"})
    response = client.post(URL, [_invoice(account, "B-1"), _invoice(account, "B-2")], format="json")
    assert response.status_code == 201
    assert [(row["number"], row["created"]) for row in response.json()] == [("B-1", False), ("B-2", True)]
    again = client.post(URL, [_invoice(account, "B-1"), _invoice(account, "B-2")], format="json")
    assert again.status_code == 200
    assert [row["created"] for row in again.json()] == [False, False]


def test_a_batch_is_issued_all_or_nothing(client, account):
    client.post(URL, _invoice(account, "C-1"), format="json")
    response = client.post(
        URL,
        [_invoice(account, "C-2"), _invoice(account, "C-1", amount_minor=1), _invoice(account, "C-3")],
        format="json",
    )
    assert response.status_code == 409
    assert "C-1" in response.json()["detail"]
    assert set(Invoice.objects.values_list("number", flat=True)) == {"C-1"}


def test_every_problem_in_a_batch_is_reported_by_position(client, account):
    response = client.post(
        URL,
        [
            _invoice(account, "D-1"),
            _invoice(account, "D-2", currency="yen", amount_minor=0),
            _invoice(account, "D-3", due_on="2026-10-01"),
            {**_invoice(account, "D-4"), "account": 10**9},
        ],
        format="json",
    )
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {"1.currency", "1.amount_minor", "2.non_field_errors", "3.account"}
    assert errors["2.non_field_errors"] == ["The due date must not be before the issue date."]
    assert errors["3.account"] == ["Account 1000000000 does not exist."]
    assert not Invoice.objects.exists()


@pytest.mark.parametrize("payload", [[], "not an invoice", 42])
def test_an_empty_or_malformed_body_is_a_400(client, payload):
    response = client.post(URL, payload, format="json")
    assert response.status_code == 400
    assert response.json()["errors"]


def test_amounts_are_integers_of_minor_units(client, account):
    response = client.post(URL, _invoice(account, amount_minor=120.5), format="json")
    assert response.status_code == 400
    assert "amount_minor" in response.json()["errors"]


# The import's rules (invoice_data_validate), answered under each field.


@pytest.mark.parametrize(
    ("changes", "field", "expected"),
    [
        ({"amount_minor": 2**63}, "amount_minor", "The amount must be at most"),
        ({"amount_minor": 10**40}, "amount_minor", "The amount must be at most"),
        ({"number": "N" * 65}, "number", "The invoice number must be 1 to 64 characters."),
        ({"number": "A\x1bB"}, "number", "The invoice number must not contain the character U+001B."),
        ({"number": "A\u202eB"}, "number", "The invoice number must not contain the character U+202E."),
        ({"number": " A-1"}, "number", "The invoice number must not start or end with a space."),
        ({"number": "A\x00B"}, "number", "Null characters are not allowed."),
        (
            {"description": "x" * 301},
            "description",
            "The description must be at most 300 characters, not 301.",
        ),
        ({"description": "a\nb"}, "description", "The description must not contain the character U+000A."),
        ({"currency": "XXX"}, "currency", "XXX is not a known currency."),
        ({"currency": "XYZ"}, "currency", "XYZ is not a known currency."),
        ({"currency": "usd"}, "currency", "The currency must be an ISO 4217 code such as USD."),
        (
            {"issued_on": "0001-01-01"},
            "issued_on",
            "The issue date must be between 1970-01-01 and 9998-12-31.",
        ),
        ({"due_on": "9999-12-31"}, "due_on", "The due date must be between 1970-01-01 and 9998-12-31."),
        ({"due_on": "20261115"}, "due_on", "Date has wrong format"),
    ],
)
def test_the_rules_of_the_import_are_answered_under_their_field(client, account, changes, field, expected):
    response = client.post(URL, _invoice(account, **changes), format="json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert list(errors) == [field], errors
    assert any(expected in message for message in errors[field]), errors
    assert not Invoice.objects.exists()


def test_a_batch_answers_each_rule_under_its_position_and_field(client, account):
    response = client.post(
        URL,
        [
            _invoice(account, "E-1"),
            _invoice(account, "E-2", amount_minor=2**63, description="x" * 400),
            _invoice(account, "E-3\x07", currency="XAU"),
        ],
        format="json",
    )
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {"1.amount_minor", "1.description", "2.number", "2.currency"}
    assert not Invoice.objects.exists()


AMOUNT_LIMITS = [
    ("USD", 100_000_000, "$1,000,000.00"),
    ("JPY", 1_000_000, "¥1,000,000"),
    ("KWD", 1_000_000_000, "KWD"),
]


@pytest.mark.parametrize(("currency", "highest", "shown"), AMOUNT_LIMITS)
def test_the_largest_amount_is_the_maximum_in_the_currencys_minor_unit(
    client, account, currency, highest, shown
):
    at_max = client.post(URL, _invoice(account, "AT", currency=currency, amount_minor=highest), format="json")
    assert at_max.status_code == 201, at_max.json()
    assert Invoice.objects.get(number="AT").amount_minor == highest

    over = client.post(
        URL, _invoice(account, "OVER", currency=currency, amount_minor=highest + 1), format="json"
    )
    assert over.status_code == 400
    [message] = over.json()["errors"]["amount_minor"]
    assert message.startswith("The amount must be at most") and shown in message
    assert f"({highest} in minor units)" in message
    assert not Invoice.objects.filter(number="OVER").exists()


def test_the_maximum_follows_the_setting(client, account, settings):
    settings.BILLING_MAX_INVOICE_AMOUNT = 50
    assert client.post(URL, _invoice(account, "A", amount_minor=51), format="json").status_code == 400
    assert client.post(URL, _invoice(account, "A", amount_minor=50), format="json").status_code == 201
