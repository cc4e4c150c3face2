"""The charge order in the console: plain HTML forms (no JavaScript) and the drag-and-drop endpoint."""

import json
import re

import pytest
from django.urls import reverse

from accounts.models import AuditEvent, Membership
from payments.models import PaymentMethod
from payments.services import charge_order_ids
from tests.factories import ChargeOrderEntryFactory, MembershipFactory, PaymentMethodFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(client):
    membership = MembershipFactory(role=Membership.Role.BILLING)
    client.force_login(membership.user)
    return membership


@pytest.fixture
def methods(owner):
    account = owner.account
    ranked = [PaymentMethodFactory(account=account, last4=f"000{n}") for n in range(1, 4)]
    for position, method in enumerate(ranked, start=1):
        ChargeOrderEntryFactory(method=method, position=position)
    spare = PaymentMethodFactory(account=account, last4="0009")
    return [m.pk for m in ranked], spare.pk


def _act(client, method_id, action):
    return client.post(reverse("charge_order_action", args=[method_id]), {"action": action})


def test_the_page_lists_primary_and_backups_in_order_with_every_button(client, methods):
    _ranked, _spare = methods
    body = client.get(reverse("payment_methods")).content.decode()
    assert body.index("Primary") < body.index("Backup 1") < body.index("Backup 2")
    assert body.index("0001") < body.index("0002") < body.index("0003")
    for label in ("Move up", "Move down", "Make primary", "Add to backups", "Remove"):
        assert f">{label}</button>" in body
    assert 'data-reorder-url="/payment-methods/order/"' in body
    assert 'aria-live="polite"' in body


def test_move_up_move_down_make_primary_without_javascript(client, owner, methods):
    (a, b, c), _ = methods
    response = _act(client, c, "move_up")
    assert response.status_code == 302
    assert response.url == f"/payment-methods/#method-{c}"
    assert charge_order_ids(account=owner.account) == [a, c, b]
    _act(client, a, "move_down")
    assert charge_order_ids(account=owner.account) == [c, a, b]
    _act(client, b, "make_primary")
    assert charge_order_ids(account=owner.account) == [b, c, a]
    page = client.get(reverse("payment_methods"))
    assert "is now Primary" in page.content.decode()
    # Without JavaScript the page reloads: its title, which a screen reader reads first, says what changed.
    title = re.search(r"<title>(.*?)</title>", page.content.decode(), re.S).group(1)
    assert "is now Primary" in title and title.endswith("· Billing console")
    assert "is now Primary" not in client.get(reverse("payment_methods")).content.decode()  # said once
    assert AuditEvent.objects.filter(account=owner.account, action="charge_order.changed").count() == 3


def test_add_to_backups_and_remove_from_backups(client, owner, methods):
    (a, b, c), spare = methods
    _act(client, spare, "add_to_backups")
    assert charge_order_ids(account=owner.account) == [a, b, c, spare]
    _act(client, b, "remove_from_backups")
    assert charge_order_ids(account=owner.account) == [a, c, spare]
    assert PaymentMethod.objects.get(pk=b).is_active


def test_a_full_charge_order_refuses_another_backup_with_a_message(client, owner, methods, settings):
    settings.BILLING_MAX_BACKUPS = 2
    (a, b, c), spare = methods
    response = _act(client, spare, "add_to_backups")
    assert charge_order_ids(account=owner.account) == [a, b, c]
    page = client.get(response.url)
    assert "at most 2 backups" in page.content.decode()


def test_remove_asks_first_then_removes_and_promotes_backup_1(client, owner, methods):
    (a, b, c), _ = methods
    confirm = client.get(reverse("payment_method_remove", args=[a]))
    assert confirm.status_code == 200
    body = confirm.content.decode()
    assert "Remove Visa •••• 0001?" in body
    assert "becomes your primary" in body
    assert PaymentMethod.objects.get(pk=a).is_active  # a GET changes nothing
    response = client.post(reverse("payment_method_remove", args=[a]))
    assert response.status_code == 302
    assert PaymentMethod.objects.get(pk=a).status == PaymentMethod.Status.REMOVED
    assert charge_order_ids(account=owner.account) == [b, c]
    assert client.get(reverse("payment_method_remove", args=[a])).status_code == 404


def test_drag_and_drop_endpoint_saves_the_order_and_returns_labels(client, owner, methods):
    (a, _b, c), spare = methods
    response = client.post(
        reverse("charge_order_set"), json.dumps({"order": [c, a, spare]}), content_type="application/json"
    )
    assert response.status_code == 200
    data = response.json()
    assert [e["id"] for e in data["order"]] == [c, a, spare]
    assert [e["rank"] for e in data["order"]] == ["Primary", "Backup 1", "Backup 2"]
    assert data["message"].startswith("Charge order saved.")
    assert charge_order_ids(account=owner.account) == [c, a, spare]


@pytest.mark.parametrize(
    "payload",
    [b"not json", b"{}", b'{"order": "abc"}', b'{"order": [1, 1]}', b'{"order": [999999]}'],
)
def test_drag_and_drop_endpoint_refuses_bad_orders_whole(client, owner, methods, payload):
    before = charge_order_ids(account=owner.account)
    response = client.post(reverse("charge_order_set"), payload, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["errors"]
    assert charge_order_ids(account=owner.account) == before


def test_endpoint_needs_the_csrf_token(owner, methods):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(owner.user)
    (a, b, c), _ = methods
    response = strict.post(
        reverse("charge_order_set"), json.dumps({"order": [c]}), content_type="application/json"
    )
    assert response.status_code == 403
    assert charge_order_ids(account=owner.account) == [a, b, c]
    response = strict.post(reverse("charge_order_action", args=[c]), {"action": "make_primary"})
    assert response.status_code == 403


def test_expiry_update_lifts_a_block(client, owner, methods):
    (a, _b, _c), _ = methods
    PaymentMethod.objects.filter(pk=a).update(blocked_reason="expired_card", blocked_at="2026-01-01T00:00Z")
    response = client.post(reverse("payment_method_expiry", args=[a]), {"exp_month": "3", "exp_year": "2035"})
    assert response.status_code == 302
    method = PaymentMethod.objects.get(pk=a)
    assert (method.exp_month, method.exp_year, method.blocked_at) == (3, 2035, None)
