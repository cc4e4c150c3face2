"""The charge order over the API: GET and PUT, refused whole with a message per problem, atomic."""

import threading

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.models import AuditEvent
from invoices.models import PaymentAttempt
from invoices.settlement import invoice_pay_now
from payments.services import charge_order_ids, charge_order_set
from tests import utils
from tests.factories import (
    InvoiceFactory,
    MembershipFactory,
    PaymentMethodFactory,
    TokenFactory,
)

URL = "/api/charge-order/"


def _client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {TokenFactory(user=user).key}")
    return client


@pytest.fixture
def membership():
    return MembershipFactory()


@pytest.fixture
def methods(membership):
    return [PaymentMethodFactory(account=membership.account) for _ in range(4)]


@pytest.fixture
def client(membership):
    return _client_for(membership.user)


@pytest.mark.django_db
def test_an_empty_order(client):
    assert client.get(URL).json() == {"primary": None, "backups": [], "entries": [], "max_backups": 3}


@pytest.mark.django_db
def test_replacing_the_order(client, membership, methods):
    a, b, c, _ = methods
    response = client.put(URL, {"primary": c.pk, "backups": [a.pk, b.pk]}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["primary"], body["backups"]) == (c.pk, [a.pk, b.pk])
    assert [(e["position"], e["position_label"], e["method"]["id"]) for e in body["entries"]] == [
        (1, "Primary", c.pk),
        (2, "Backup 1", a.pk),
        (3, "Backup 2", b.pk),
    ]
    assert charge_order_ids(account=membership.account) == [c.pk, a.pk, b.pk]
    event = AuditEvent.objects.get(account=membership.account, action="charge_order.changed")
    assert event.after == {"order": [c.pk, a.pk, b.pk]}
    assert event.actor == membership.user
    assert client.get(URL).json() == body


@pytest.mark.django_db
def test_a_bad_order_is_refused_whole_with_every_problem(client, membership, methods):
    a, b, c, _ = methods
    charge_order_set(account=membership.account, actor=None, method_ids=[a.pk, b.pk])
    c.status, c.removed_at = "removed", c.created_at
    c.save()
    stranger = PaymentMethodFactory()
    events = AuditEvent.objects.filter(account=membership.account, action="charge_order.changed").count()
    response = client.put(URL, {"primary": a.pk, "backups": [a.pk, c.pk, stranger.pk]}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == {
        "non_field_errors": [
            f"Payment method {a.pk} appears more than once.",
            f"Payment method {c.pk} has been removed.",
            f"Payment method {stranger.pk} does not exist.",
        ]
    }
    assert charge_order_ids(account=membership.account) == [a.pk, b.pk]
    assert (
        AuditEvent.objects.filter(account=membership.account, action="charge_order.changed").count() == events
    )


@pytest.mark.django_db
def test_too_many_backups(client, methods, settings):
    settings.BILLING_MAX_BACKUPS = 2
    a, b, c, d = methods
    response = client.put(URL, {"primary": a.pk, "backups": [b.pk, c.pk, d.pk]}, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == "A charge order holds a primary and at most 2 backups."
    assert client.get(URL).json()["max_backups"] == 2


@pytest.mark.django_db
def test_backups_need_a_primary_and_null_clears(client, membership, methods):
    a, b, *_ = methods
    response = client.put(URL, {"primary": None, "backups": [a.pk]}, format="json")
    assert response.status_code == 400
    assert "primary" in response.json()["errors"]
    charge_order_set(account=membership.account, actor=None, method_ids=[a.pk, b.pk])
    assert client.put(URL, {"primary": None, "backups": []}, format="json").json()["primary"] is None
    assert charge_order_ids(account=membership.account) == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({}, {"primary", "backups"}),
        ({"primary": "one", "backups": []}, {"primary"}),
        ({"primary": 1, "backups": [2, "x"]}, {"backups.1"}),
        ({"primary": 1, "backups": "2"}, {"backups"}),
        ([1, 2], {"non_field_errors"}),
    ],
)
def test_malformed_payloads_name_the_field(client, payload, fields):
    response = client.put(URL, payload, format="json")
    assert response.status_code == 400
    assert set(response.json()["errors"]) == fields


@pytest.mark.django_db
def test_reading_the_order_costs_the_same_queries_for_any_length(client, membership, methods):
    charge_order_set(account=membership.account, actor=None, method_ids=[methods[0].pk])
    with CaptureQueriesContext(connection) as short:
        client.get(URL)
    charge_order_set(account=membership.account, actor=None, method_ids=[m.pk for m in methods])
    with CaptureQueriesContext(connection) as long:
        client.get(URL)
    assert len(long) == len(short) <= 3


# On PostgreSQL, with real transactions: a PUT is all or nothing to every concurrent reader.

ORDERS_BY_INDEX = [[0, 1, 2], [2, 1, 0], [1], [3, 0], [1, 3, 2, 0]]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_puts_never_show_a_half_applied_order():
    membership = MembershipFactory()
    methods = [PaymentMethodFactory(account=membership.account) for _ in range(4)]
    orders = [[methods[i].pk for i in order] for order in ORDERS_BY_INDEX]
    charge_order_set(account=membership.account, actor=None, method_ids=orders[0])
    tokens = [TokenFactory(user=membership.user).key]
    for _ in range(2):
        tokens.append(TokenFactory(user=MembershipFactory(account=membership.account).user).key)
    complete = {tuple(order) for order in orders}
    seen, errors, statuses = [], [], []
    stop = threading.Event()

    def writer(token: str, offset: int):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        try:
            for n in range(15):
                order = orders[(n + offset) % len(orders)]
                response = client.put(URL, {"primary": order[0], "backups": order[1:]}, format="json")
                statuses.append(response.status_code)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    def reader():
        try:
            while not stop.is_set():
                # Each read in its own transaction, as a settlement claim reads the order.
                with transaction.atomic():
                    seen.append(tuple(charge_order_ids(account=membership.account)))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    readers = [threading.Thread(target=reader) for _ in range(2)]
    writers = [threading.Thread(target=writer, args=(token, i)) for i, token in enumerate(tokens)]
    for thread in readers + writers:
        thread.start()
    for thread in writers:
        thread.join(timeout=120)
    stop.set()
    for thread in readers:
        thread.join(timeout=30)

    assert not errors
    assert set(statuses) == {200}
    assert len(seen) > 10
    assert set(seen) <= complete, set(seen) - complete
    assert tuple(charge_order_ids(account=membership.account)) in complete


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_put_during_pay_now_leaves_the_cascade_one_complete_order(settings):
    """Every card declines, so each Pay now tries the whole order it read: that order is one complete
    order that was written, never half of one and half of another."""
    membership = MembershipFactory()
    account, user = membership.account, membership.user
    # Four cards of one declining test number (the same card four times: kept as duplicates on purpose).
    cards = [utils.add_card(account, utils.GENERIC_DECLINE, actor=user) for _ in range(4)]
    orders = [[cards[i].pk for i in order] for order in ORDERS_BY_INDEX]
    complete = {tuple(order) for order in orders}
    charge_order_set(account=account, actor=None, method_ids=orders[0])
    invoices = [InvoiceFactory(account=account) for _ in range(6)]
    token = TokenFactory(user=user).key
    errors, writes = [], []
    done = threading.Event()

    def writer():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        try:
            n = 0
            while not done.is_set():
                order = orders[n % len(orders)]
                n += 1
                response = client.put(URL, {"primary": order[0], "backups": order[1:]}, format="json")
                assert response.status_code == 200
                writes.append(order)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    def payer():
        try:
            for invoice in invoices:
                invoice_pay_now(invoice=invoice, actor=user)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            done.set()
            connections.close_all()

    threads = [threading.Thread(target=writer), threading.Thread(target=payer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)

    assert not errors
    assert len(writes) > 1
    tried_orders = set()
    for invoice in invoices:
        tried = tuple(
            PaymentAttempt.objects.filter(invoice=invoice, trigger="pay_now")
            .exclude(status="skipped")
            .order_by("sequence")
            .values_list("method_id", flat=True)
        )
        assert tried in complete, (invoice.number, tried)
        tried_orders.add(tried)
    print(f"{len(writes)} orders written; Pay now tried {len(tried_orders)} different ones")
