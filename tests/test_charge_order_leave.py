"""Remove from charge order: the primary leaves only after a page that says who takes its place."""

import pytest
from django.urls import reverse

from accounts.models import AuditEvent, Membership
from payments.services import charge_order_ids
from tests.factories import ChargeOrderEntryFactory, MembershipFactory, PaymentMethodFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(client):
    membership = MembershipFactory(role=Membership.Role.BILLING)
    client.force_login(membership.user)
    return membership


def ranked(account, *last4s):
    methods = [PaymentMethodFactory(account=account, last4=last4) for last4 in last4s]
    for position, method in enumerate(methods, start=1):
        ChargeOrderEntryFactory(method=method, position=position)
    return methods


def test_the_primary_offers_remove_from_charge_order_and_backups_remove_from_backups(client, owner):
    primary, backup = ranked(owner.account, "0001", "0002")
    body = client.get(reverse("payment_methods")).content.decode()
    primary_card = body[body.index(f'id="method-{primary.pk}"') : body.index(f'id="method-{backup.pk}"')]
    assert f'action="{reverse("charge_order_leave", args=[primary.pk])}"' in primary_card
    assert "Remove from charge order" in primary_card and "Remove from backups" not in primary_card
    backup_card = body[body.index(f'id="method-{backup.pk}"') :]
    assert "Remove from backups" in backup_card


def test_posting_remove_from_backups_on_the_primary_asks_first(client, owner):
    primary, backup = ranked(owner.account, "0001", "0002")
    response = client.post(
        reverse("charge_order_action", args=[primary.pk]), {"action": "remove_from_backups"}
    )
    assert response.url == reverse("charge_order_leave", args=[primary.pk])
    assert charge_order_ids(account=owner.account) == [primary.pk, backup.pk]


def test_the_confirmation_names_the_backup_that_becomes_primary_then_removes(client, owner):
    primary, backup, _third = ranked(owner.account, "0001", "0002", "0003")
    url = reverse("charge_order_leave", args=[primary.pk])
    page = " ".join(client.get(url).content.decode().split())
    assert "Remove Visa •••• 0001 from the charge order?" in page
    assert (
        "Once it leaves the charge order, <strong>Visa •••• 0002</strong> becomes your primary and is "
        "charged first." in page
    )
    assert charge_order_ids(account=owner.account)[0] == primary.pk  # asking changes nothing
    response = client.post(url, follow=True)
    assert charge_order_ids(account=owner.account) == [backup.pk, _third.pk]
    assert "Visa •••• 0001 is no longer in the charge order; it stays on file." in response.content.decode()
    primary.refresh_from_db()
    assert primary.is_active
    assert AuditEvent.objects.filter(account=owner.account, action="charge_order.changed").count() == 1


def test_the_only_method_says_nothing_will_be_left_to_charge(client, owner):
    (only,) = ranked(owner.account, "0001")
    page = " ".join(client.get(reverse("charge_order_leave", args=[only.pk])).content.decode().split())
    assert "no method will be left to charge, and invoices cannot be paid automatically" in page
    client.post(reverse("charge_order_leave", args=[only.pk]))
    assert charge_order_ids(account=owner.account) == []


def test_a_method_not_in_the_order_has_no_confirmation(client, owner):
    spare = PaymentMethodFactory(account=owner.account)
    response = client.get(reverse("charge_order_leave", args=[spare.pk]))
    assert response.status_code == 302 and response.url.startswith(reverse("payment_methods"))


def test_a_viewer_and_another_account_cannot_use_it(client, owner):
    other = PaymentMethodFactory()
    ChargeOrderEntryFactory(method=other, position=1)
    assert client.get(reverse("charge_order_leave", args=[other.pk])).status_code == 404
    assert client.post(reverse("charge_order_leave", args=[other.pk])).status_code == 404
    assert charge_order_ids(account=other.account) == [other.pk]
    viewer = MembershipFactory(account=owner.account, role=Membership.Role.VIEWER)
    (primary,) = ranked(owner.account, "0001")
    client.force_login(viewer.user)
    assert client.get(reverse("charge_order_leave", args=[primary.pk])).status_code == 403
    assert client.post(reverse("charge_order_leave", args=[primary.pk])).status_code == 403
