"""Every console URL, as a stranger (signed out), a member of another account and a viewer."""

import json

import pytest
from django.urls import reverse

from accounts.models import Account, AuditEvent, Invitation, Membership
from invoices.models import Invoice
from payments.models import ChargeOrderEntry, PaymentMethod
from tests.factories import (
    AccountFactory,
    ChargeOrderEntryFactory,
    InvoiceFactory,
    MembershipFactory,
    PaymentMethodFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def account_a():
    account = AccountFactory(name="Alpha Ltd")
    primary = ChargeOrderEntryFactory(method=PaymentMethodFactory(account=account, last4="1111"), position=1)
    ChargeOrderEntryFactory(method=PaymentMethodFactory(account=account, last4="2222"), position=2)
    PaymentMethodFactory(account=account, last4="3333")  # on file, not ranked
    InvoiceFactory(account=account, number="ALPHA-1", status=Invoice.Status.PAST_DUE)
    return account, primary.method


def _objects(account):
    method = PaymentMethod.objects.filter(account=account).order_by("pk").first()
    invoice = Invoice.objects.filter(account=account).first()
    return method, invoice


# (name, kwargs-builder, manager-only GET page)
READ_PAGES = [
    ("dashboard", lambda m, i: {}),
    ("payment_methods", lambda m, i: {}),
    ("invoices", lambda m, i: {}),
    ("invoice_detail", lambda m, i: {"pk": i.pk}),
    ("activity", lambda m, i: {}),
    ("settings", lambda m, i: {}),
    ("billing_contacts", lambda m, i: {}),
    ("members", lambda m, i: {}),
]
MANAGER_PAGES = [
    ("payment_method_add", lambda m, i: {"kind": "card"}),
    ("payment_method_add", lambda m, i: {"kind": "sepa"}),
    ("payment_method_add", lambda m, i: {"kind": "bank"}),
    ("payment_method_remove", lambda m, i: {"pk": m.pk}),
    ("payment_method_expiry", lambda m, i: {"pk": m.pk}),
]
# (name, kwargs-builder, POST data)
ACTIONS = [
    ("charge_order_action", lambda m, i: {"pk": m.pk}, {"action": "move_down"}),
    ("charge_order_action", lambda m, i: {"pk": m.pk}, {"action": "make_primary"}),
    ("charge_order_action", lambda m, i: {"pk": m.pk}, {"action": "remove_from_backups"}),
    ("charge_order_action", lambda m, i: {"pk": m.pk}, {"action": "add_to_backups"}),
    ("payment_method_remove", lambda m, i: {"pk": m.pk}, {}),
    ("payment_method_expiry", lambda m, i: {"pk": m.pk}, {"exp_month": "1", "exp_year": "2035"}),
    (
        "payment_method_add",
        lambda m, i: {"kind": "card"},
        {"number": "4242424242424242", "expiry": "12/34", "cvc": "123", "add_to_order": "on"},
    ),
    ("invoice_pay_now", lambda m, i: {"pk": i.pk}, {}),
    ("billing_contacts", lambda m, i: {}, {"billing_email": "evil@example.com"}),
    ("members", lambda m, i: {}, {"email": "evil@example.com", "role": "owner"}),
]
OBJECT_URLS = {"invoice_detail", "payment_method_remove", "payment_method_expiry", "charge_order_action"}


def _state(account):
    return (
        list(ChargeOrderEntry.objects.filter(account=account).values_list("method_id", "position")),
        list(PaymentMethod.objects.filter(account=account).values_list("pk", "status", "exp_year")),
        list(Invoice.objects.filter(account=account).values_list("pk", "status")),
        AuditEvent.objects.filter(account=account).count(),
        Account.objects.get(pk=account.pk).billing_email,
        list(Membership.objects.filter(account=account).values_list("pk", "role")),
        Invitation.objects.filter(account=account).count(),
    )


def _all_urls(method, invoice):
    for name, kwargs, *_ in READ_PAGES + MANAGER_PAGES:
        yield "get", reverse(name, kwargs=kwargs(method, invoice)), {}
    for name, kwargs, data in ACTIONS:
        yield "post", reverse(name, kwargs=kwargs(method, invoice)), data
    yield "post", reverse("charge_order_set"), None
    yield "post", reverse("switch_account"), {"account": "1"}


def test_signed_out_every_url_redirects_to_sign_in(client, account_a):
    account, _ = account_a
    method, invoice = _objects(account)
    before = _state(account)
    for verb, url, data in _all_urls(method, invoice):
        response = getattr(client, verb)(url, data or {})
        assert response.status_code == 302, url
        assert response.url.startswith(reverse("login") + "?next="), url
    assert _state(account) == before


def test_another_accounts_objects_are_404_and_its_data_never_shows(client, account_a):
    account, _ = account_a
    method, invoice = _objects(account)
    stranger = MembershipFactory(account=AccountFactory(name="Bravo Ltd"), role=Membership.Role.OWNER)
    client.force_login(stranger.user)
    before = _state(account)
    for name, kwargs, *_ in READ_PAGES + MANAGER_PAGES:
        url = reverse(name, kwargs=kwargs(method, invoice))
        response = client.get(url)
        if name in OBJECT_URLS:
            assert response.status_code == 404, url
        else:
            assert response.status_code == 200, url
            body = response.content.decode()
            assert "ALPHA-1" not in body and "1111" not in body and "Alpha Ltd" not in body, url
    for name, kwargs, data in ACTIONS:
        url = reverse(name, kwargs=kwargs(method, invoice))
        response = client.post(url, data)
        if name in OBJECT_URLS | {"invoice_pay_now"}:
            assert response.status_code == 404, url
    # The JSON endpoint refuses another account's methods whole, as if they did not exist.
    response = client.post(
        reverse("charge_order_set"), json.dumps({"order": [method.pk]}), content_type="application/json"
    )
    assert response.status_code == 400
    assert "does not exist" in response.json()["errors"][0]
    # Switching to an account one is not a member of is a 404 too.
    assert client.post(reverse("switch_account"), {"account": account.pk}).status_code == 404
    assert _state(account) == before


ACTION_LABELS = ("Move up", "Move down", "Make primary", "Add to backups", "Pay now", ">Remove<")


def test_viewer_reads_everything_but_sees_no_action_and_every_action_is_refused(client, account_a):
    account, _ = account_a
    method, invoice = _objects(account)
    viewer = MembershipFactory(account=account, role=Membership.Role.VIEWER)
    client.force_login(viewer.user)
    before = _state(account)
    for name, kwargs in READ_PAGES:
        url = reverse(name, kwargs=kwargs(method, invoice))
        response = client.get(url)
        assert response.status_code == 200, url
        body = response.content.decode()
        for label in ACTION_LABELS:
            assert label not in body, (url, label)
    for name, kwargs in MANAGER_PAGES:
        url = reverse(name, kwargs=kwargs(method, invoice))
        assert client.get(url).status_code == 403, url
    for name, kwargs, data in ACTIONS:
        url = reverse(name, kwargs=kwargs(method, invoice))
        assert client.post(url, data).status_code == 403, url
    response = client.post(
        reverse("charge_order_set"),
        json.dumps({"order": [method.pk]}),
        content_type="application/json",
    )
    assert response.status_code == 403
    assert _state(account) == before


def test_viewer_may_change_their_own_preferences(client, account_a):
    account, _ = account_a
    viewer = MembershipFactory(account=account, role=Membership.Role.VIEWER)
    client.force_login(viewer.user)
    response = client.post(reverse("settings"), {"language": "", "time_zone": "Asia/Tokyo"})
    assert response.status_code == 302
    assert viewer.user.profile.time_zone == "Asia/Tokyo"


def test_a_user_with_no_membership_is_told_so(client):
    from tests.factories import UserFactory

    client.force_login(UserFactory())
    response = client.get(reverse("dashboard"))
    assert response.status_code == 403
    assert b"not a member of any account" in response.content


def test_unknown_kind_of_method_is_404(client, account_a):
    account, _ = account_a
    owner = MembershipFactory(account=account)
    client.force_login(owner.user)
    assert client.get(reverse("payment_method_add", kwargs={"kind": "crypto"})).status_code == 404
