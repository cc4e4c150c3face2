"""Every console page costs a fixed number of queries, however many methods, invoices or events."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import Membership, Profile
from invoices.models import Invoice
from tests.factories import (
    AccountFactory,
    AuditEventFactory,
    ChargeOrderEntryFactory,
    InvoiceFactory,
    MembershipFactory,
    PaymentAttemptFactory,
    PaymentMethodFactory,
    ProfileFactory,
)

pytestmark = pytest.mark.django_db

MAX_QUERIES = 20


def _account_with(rows: int):
    account = AccountFactory()
    for n in range(rows):
        method = PaymentMethodFactory(account=account)
        if n < 4:  # a primary and three backups; the rest stay on file
            ChargeOrderEntryFactory(method=method, position=n + 1)
        invoice = InvoiceFactory(
            account=account, status=Invoice.Status.PAST_DUE if n % 2 else Invoice.Status.OPEN
        )
        PaymentAttemptFactory(invoice=invoice, method=method, sequence=1)
        PaymentAttemptFactory(invoice=invoice, method=method, sequence=2, position=2)
        AuditEventFactory(account=account, before={"order": [method.pk]}, after={"order": [method.pk]})
    membership = MembershipFactory(account=account, role=Membership.Role.OWNER)
    return membership, account


PAGES = [
    ("dashboard", lambda a: []),
    ("payment_methods", lambda a: []),
    ("invoices", lambda a: []),
    ("invoices", lambda a: []),
    ("invoice_detail", lambda a: [Invoice.objects.filter(account=a).latest("pk").pk]),
    ("activity", lambda a: []),
    ("settings", lambda a: []),
    ("payment_method_add", lambda a: ["card"]),
    ("payment_method_remove", lambda a: [a.payment_methods.first().pk]),
]


def _count(client, name, args):
    url = reverse(name, args=args)
    client.get(url)  # warm caches that are not per request (content types, translations)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(queries)


@pytest.mark.parametrize(("name", "args"), PAGES, ids=[p[0] for p in PAGES])
def test_query_count_does_not_grow_with_rows(client, django_assert_max_num_queries, name, args):
    small_member, small = _account_with(2)
    large_member, large = _account_with(20)
    client.force_login(small_member.user)
    with django_assert_max_num_queries(MAX_QUERIES):
        client.get(reverse(name, args=args(small)))
    few = _count(client, name, args(small))
    client.force_login(large_member.user)
    with django_assert_max_num_queries(MAX_QUERIES):
        client.get(reverse(name, args=args(large)))
    many = _count(client, name, args(large))
    assert few == many, f"{name}: {few} queries with 2 rows, {many} with 20"


@pytest.mark.parametrize("name", ["dashboard", "payment_methods", "invoices", "charge_order_api"])
def test_memberships_are_loaded_once_per_request(client, name):
    """The account switcher (and the API, signed in through the console) reuse what the request loaded."""
    member, account = _account_with(2)
    other = AccountFactory(name="Second account")
    MembershipFactory(account=other, user=member.user, role=Membership.Role.VIEWER)
    client.force_login(member.user)
    url = "/api/charge-order/" if name == "charge_order_api" else reverse(name)
    client.get(url)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, HTTP_ACCEPT="text/html,application/json")
    assert response.status_code == 200
    membership_queries = [q for q in queries if 'FROM "accounts_membership"' in q["sql"]]
    assert len(membership_queries) == 1, [q["sql"] for q in membership_queries]
    if name != "charge_order_api":
        body = response.content.decode()
        assert "Second account" in body and account.name in body  # the switcher lists both


def test_the_members_preferences_come_with_the_memberships(client):
    """The saved language and time zone cost no query of their own; a change shows at once."""
    member, _ = _account_with(2)
    profile = ProfileFactory(user=member.user, language="ja", time_zone="Asia/Tokyo")
    client.force_login(member.user)
    client.get(reverse("dashboard"))
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("dashboard"))
    assert response.status_code == 200 and response["Content-Language"] == "ja"
    assert not [q for q in queries if 'FROM "accounts_profile"' in q["sql"]]
    Profile.objects.filter(pk=profile.pk).update(language="en")
    assert client.get(reverse("dashboard"))["Content-Language"] == "en"
