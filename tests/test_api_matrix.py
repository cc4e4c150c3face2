"""Who may do what: every endpoint and method, as an owner, a viewer, a member of another account, a
staff token and no credentials.

Account A has an owner and a viewer; account B's owner is "other". Another account's object is a 404
(never a 403 that would confirm it exists), its id in a payload a 400, and a list never shows it.
"""

import dataclasses
from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

from accounts.models import Invitation, Membership
from payments.models import PaymentMethod
from tests.factories import (
    AccountFactory,
    ChargeOrderEntryFactory,
    InvoiceFactory,
    MembershipFactory,
    PaymentAttemptFactory,
    PaymentMethodFactory,
    StaffUserFactory,
    TokenFactory,
)

pytestmark = pytest.mark.django_db


ACTORS = ["owner", "viewer", "other", "staff", "anonymous"]
PASSWORD = "matrix-Password-1"


@dataclasses.dataclass
class World:
    account_a: object
    account_b: object
    methods_a: list
    methods_b: list
    invoice_a: object
    invoice_b: object
    users: dict
    tokens: dict

    def client(self, actor: str) -> APIClient:
        client = APIClient()
        if actor in self.tokens:
            client.credentials(HTTP_AUTHORIZATION=f"Token {self.tokens[actor].key}")
        return client


def _account_with_order():
    account = AccountFactory()
    methods = [PaymentMethodFactory(account=account) for _ in range(3)]
    for position, method in enumerate(methods[:2], start=1):
        ChargeOrderEntryFactory(account=account, method=method, position=position)
    invoice = InvoiceFactory(account=account)
    PaymentAttemptFactory(invoice=invoice, method=methods[0])
    return account, methods, invoice


@pytest.fixture
def world() -> World:
    account_a, methods_a, invoice_a = _account_with_order()
    account_b, methods_b, invoice_b = _account_with_order()
    owner = MembershipFactory(account=account_a, role="owner", user__password=PASSWORD).user
    viewer = MembershipFactory(account=account_a, role="viewer", user__password=PASSWORD).user
    other = MembershipFactory(account=account_b, role="owner", user__password=PASSWORD).user
    staff = StaffUserFactory(password=PASSWORD)
    users = {"owner": owner, "viewer": viewer, "other": other, "staff": staff}
    return World(
        account_a=account_a,
        account_b=account_b,
        methods_a=methods_a,
        methods_b=methods_b,
        invoice_a=invoice_a,
        invoice_b=invoice_b,
        users=users,
        tokens={actor: TokenFactory(user=user) for actor, user in users.items()},
    )


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    method: str
    url: Callable[[World], str]
    expected: dict  # actor -> status
    body: Callable[[World, str], object] | None = None


def _card(world, actor):
    return {"kind": "card", "number": "4242424242424242", "exp_month": 12, "exp_year": 2035, "cvc": "123"}


def _order_of_a(world, actor):
    # Account A's methods: the owner's own; for "other" they belong to another account.
    return {"primary": world.methods_a[1].pk, "backups": [world.methods_a[0].pk]}


def _staff_invoice(world, actor):
    return {
        "account": world.account_a.pk,
        "number": "OPS-1",
        "currency": "USD",
        "amount_minor": 1000,
        "issued_on": "2026-01-01",
        "due_on": "2026-01-15",
    }


def _credentials(world, actor):
    if actor == "anonymous":
        return {"username": "nobody", "password": "wrong-password"}
    return {"username": world.users[actor].username, "password": PASSWORD}


def _viewer_of_a(world) -> Membership:
    return Membership.objects.get(account=world.account_a, user=world.users["viewer"])


def _invitation_of_a(world) -> Invitation:
    invitation, _created = Invitation.objects.get_or_create(
        account=world.account_a,
        email="invited@a.example",
        defaults={"role": "viewer", "expires_at": "2099-01-01T00:00Z"},
    )
    return invitation


MEMBER_READ = {"owner": 200, "viewer": 200, "other": 404, "staff": 403, "anonymous": 401}
MEMBER_LIST = {"owner": 200, "viewer": 200, "other": 200, "staff": 403, "anonymous": 401}

CASES = [
    Case(
        "token create",
        "post",
        lambda w: "/api/auth/token/",
        {"owner": 200, "viewer": 200, "other": 200, "staff": 200, "anonymous": 400},
        _credentials,
    ),
    Case(
        "token revoke",
        "delete",
        lambda w: "/api/auth/token/",
        {"owner": 204, "viewer": 204, "other": 204, "staff": 204, "anonymous": 401},
    ),
    Case(
        "accounts list",
        "get",
        lambda w: "/api/accounts/",
        {"owner": 200, "viewer": 200, "other": 200, "staff": 200, "anonymous": 401},
    ),
    Case("billing contacts read", "get", lambda w: "/api/account/billing-contacts/", MEMBER_LIST),
    Case(
        "billing contacts replace",
        "put",
        lambda w: "/api/account/billing-contacts/",
        {"owner": 200, "viewer": 403, "other": 200, "staff": 403, "anonymous": 401},
        lambda w, a: {"billing_email": "ap@a.example", "recipients": ["cfo@a.example"]},
    ),
    Case("members list", "get", lambda w: "/api/members/", MEMBER_LIST),
    Case("member read", "get", lambda w: f"/api/members/{_viewer_of_a(w).pk}/", MEMBER_READ),
    Case(
        "member role change",
        "patch",
        lambda w: f"/api/members/{_viewer_of_a(w).pk}/",
        {"owner": 200, "viewer": 403, "other": 404, "staff": 403, "anonymous": 401},
        lambda w, a: {"role": "billing"},
    ),
    Case(
        "member remove",
        "delete",
        lambda w: f"/api/members/{_viewer_of_a(w).pk}/",
        {"owner": 204, "viewer": 403, "other": 404, "staff": 403, "anonymous": 401},
    ),
    Case("invitations list", "get", lambda w: "/api/invitations/", MEMBER_LIST),
    Case("invitation read", "get", lambda w: f"/api/invitations/{_invitation_of_a(w).pk}/", MEMBER_READ),
    Case(
        "invite",
        "post",
        lambda w: "/api/invitations/",
        {"owner": 201, "viewer": 403, "other": 201, "staff": 403, "anonymous": 401},
        lambda w, a: {"email": "new@example.com", "role": "billing"},
    ),
    Case(
        "invitation cancel",
        "delete",
        lambda w: f"/api/invitations/{_invitation_of_a(w).pk}/",
        {"owner": 204, "viewer": 403, "other": 404, "staff": 403, "anonymous": 401},
    ),
    Case("methods list", "get", lambda w: "/api/payment-methods/", MEMBER_LIST),
    Case(
        "method add",
        "post",
        lambda w: "/api/payment-methods/",
        {"owner": 201, "viewer": 403, "other": 201, "staff": 403, "anonymous": 401},
        _card,
    ),
    Case("method read", "get", lambda w: f"/api/payment-methods/{w.methods_a[0].pk}/", MEMBER_READ),
    Case(
        "method remove",
        "delete",
        lambda w: f"/api/payment-methods/{w.methods_a[0].pk}/",
        {"owner": 204, "viewer": 403, "other": 404, "staff": 403, "anonymous": 401},
    ),
    Case("charge order read", "get", lambda w: "/api/charge-order/", MEMBER_LIST),
    Case(
        "charge order replace",
        "put",
        lambda w: "/api/charge-order/",
        {"owner": 200, "viewer": 403, "other": 400, "staff": 403, "anonymous": 401},
        _order_of_a,
    ),
    Case("invoices list", "get", lambda w: "/api/invoices/", MEMBER_LIST),
    Case("invoice read", "get", lambda w: f"/api/invoices/{w.invoice_a.pk}/", MEMBER_READ),
    Case("attempts list", "get", lambda w: f"/api/invoices/{w.invoice_a.pk}/attempts/", MEMBER_READ),
    Case(
        "pay now",
        "post",
        lambda w: f"/api/invoices/{w.invoice_a.pk}/pay/",
        {"owner": 200, "viewer": 403, "other": 404, "staff": 403, "anonymous": 401},
        lambda w, a: {},
    ),
    Case(
        "staff issue",
        "post",
        lambda w: "/api/staff/invoices/",
        {"owner": 403, "viewer": 403, "other": 403, "staff": 201, "anonymous": 401},
        _staff_invoice,
    ),
    Case(
        "staff recovery report",
        "get",
        lambda w: "/api/staff/recovery/?currency=USD",
        {"owner": 403, "viewer": 403, "other": 403, "staff": 200, "anonymous": 401},
    ),
    Case(
        "schema",
        "get",
        lambda w: "/api/schema/",
        {"owner": 200, "viewer": 200, "other": 200, "staff": 200, "anonymous": 200},
    ),
    Case(
        "docs",
        "get",
        lambda w: "/api/docs/",
        {"owner": 200, "viewer": 200, "other": 200, "staff": 200, "anonymous": 200},
    ),
]


def _ids(response) -> set:
    return {item["id"] for item in response.json()["results"]}


@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_status(world, case, actor):
    client = world.client(actor)
    kwargs = {"format": "json"}
    if case.body is not None:
        kwargs["data"] = case.body(world, actor)
    response = getattr(client, case.method)(case.url(world), **kwargs)
    assert response.status_code == case.expected[actor], response.content
    if response.status_code >= 400:
        # Every error is JSON with a sentence and a code.
        assert response["Content-Type"].startswith("application/json")
        assert {"detail", "code"} <= response.json().keys()
    if response.status_code == 401:
        assert response["WWW-Authenticate"] == "Token"


@pytest.mark.parametrize("actor", ["owner", "viewer", "other"])
@pytest.mark.parametrize(
    ("url", "own_ids"),
    [
        (
            "/api/payment-methods/",
            lambda w, account: {m.pk for m in PaymentMethod.objects.filter(account=account)},
        ),
        ("/api/invoices/", lambda w, account: {w.invoice_a.pk if account == w.account_a else w.invoice_b.pk}),
    ],
)
def test_lists_hold_only_the_callers_account(world, actor, url, own_ids):
    account = world.account_b if actor == "other" else world.account_a
    response = world.client(actor).get(url)
    assert response.status_code == 200
    assert _ids(response) == own_ids(world, account)


@pytest.mark.parametrize("actor", ["owner", "other"])
def test_accounts_list_holds_only_the_callers_memberships(world, actor):
    account = world.account_b if actor == "other" else world.account_a
    response = world.client(actor).get("/api/accounts/")
    assert [row["id"] for row in response.json()["results"]] == [account.pk]


def test_staff_without_membership_has_no_accounts(world):
    assert world.client("staff").get("/api/accounts/").json()["results"] == []


@pytest.mark.parametrize("actor", ["owner", "other"])
def test_charge_order_shows_only_the_callers_methods(world, actor):
    methods = world.methods_b if actor == "other" else world.methods_a
    body = world.client(actor).get("/api/charge-order/").json()
    assert [body["primary"], *body["backups"]] == [methods[0].pk, methods[1].pk]
    assert {entry["method"]["id"] for entry in body["entries"]} <= {m.pk for m in methods}


def test_another_accounts_method_in_an_order_is_a_400_and_changes_nothing(world):
    response = world.client("other").put(
        "/api/charge-order/",
        {"primary": world.methods_b[0].pk, "backups": [world.methods_a[0].pk]},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["errors"]["non_field_errors"] == [
        f"Payment method {world.methods_a[0].pk} does not exist."
    ]
    order = world.client("other").get("/api/charge-order/").json()
    assert [order["primary"], *order["backups"]] == [world.methods_b[0].pk, world.methods_b[1].pk]


def test_another_accounts_method_for_pay_now_is_a_400(world):
    response = world.client("other").post(
        f"/api/invoices/{world.invoice_b.pk}/pay/", {"method": world.methods_a[0].pk}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"] == {
        "method": [f"Payment method {world.methods_a[0].pk} does not exist."]
    }
    assert not world.invoice_b.attempts.filter(trigger="pay_now").exists()


def test_a_member_of_several_accounts_chooses_one(world):
    owner = world.users["owner"]
    MembershipFactory(account=world.account_b, user=owner, role="viewer")
    client = world.client("owner")
    first = min([world.account_a, world.account_b], key=lambda a: (a.name, a.pk))
    # Without a choice: the first account, as in the console.
    assert {m["id"] for m in client.get("/api/payment-methods/").json()["results"]} == {
        m.pk for m in PaymentMethod.objects.filter(account=first)
    }
    chosen = client.get("/api/payment-methods/", HTTP_X_ACCOUNT=str(world.account_b.pk))
    assert _ids(chosen) == {m.pk for m in world.methods_b}
    by_query = client.get(f"/api/payment-methods/?account={world.account_b.pk}")
    assert _ids(by_query) == {m.pk for m in world.methods_b}
    # The role follows the chosen account: a viewer there may not change anything.
    refused = client.delete(
        f"/api/payment-methods/{world.methods_b[0].pk}/", HTTP_X_ACCOUNT=str(world.account_b.pk)
    )
    assert refused.status_code == 403
    # Another account's method through the caller's own account is a 404.
    assert (
        client.get(
            f"/api/payment-methods/{world.methods_b[0].pk}/", HTTP_X_ACCOUNT=str(world.account_a.pk)
        ).status_code
        == 404
    )


def test_naming_an_account_one_is_not_a_member_of_is_a_404(world):
    client = world.client("other")
    response = client.get("/api/payment-methods/", HTTP_X_ACCOUNT=str(world.account_a.pk))
    assert response.status_code == 404
    assert client.get(f"/api/invoices/?account={world.account_a.pk}").status_code == 404
    assert client.get("/api/invoices/?account=999999").status_code == 404


@pytest.mark.parametrize("value", ["abc", "0", "-1", "1.5", "1" * 19])
def test_a_malformed_account_choice_is_a_400(world, value):
    response = world.client("owner").get("/api/invoices/", HTTP_X_ACCOUNT=value)
    assert response.status_code == 400
    assert "X-Account" in response.json()["errors"]


def test_the_header_wins_over_the_query(world):
    client = world.client("owner")
    response = client.get(
        f"/api/invoices/?account={world.account_b.pk}", HTTP_X_ACCOUNT=str(world.account_a.pk)
    )
    assert response.status_code == 200
    assert _ids(response) == {world.invoice_a.pk}
    # Both are still checked.
    response = client.get("/api/invoices/?account=x", HTTP_X_ACCOUNT=str(world.account_a.pk))
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("patch", "/api/charge-order/"),
        ("post", "/api/charge-order/"),
        ("put", "/api/payment-methods/{method}/"),
        ("delete", "/api/invoices/{invoice}/"),
        ("get", "/api/invoices/{invoice}/pay/"),
        ("put", "/api/auth/token/"),
    ],
)
def test_unsupported_methods_are_405(world, method, url):
    url = url.format(method=world.methods_a[0].pk, invoice=world.invoice_a.pk)
    response = getattr(world.client("owner"), method)(url, {}, format="json")
    assert response.status_code == 405
    assert "Allow" in response


def test_staff_endpoint_only_issues(world):
    response = world.client("staff").get("/api/staff/invoices/")
    assert response.status_code == 405
    assert "Allow" in response


def test_malformed_ids_are_json_404s(world):
    for url in [
        "/api/payment-methods/abc/",
        "/api/invoices/-1/",
        "/api/invoices/99999999999999999999999/attempts/",
    ]:
        response = world.client("owner").get(url)
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"


def test_session_authentication_needs_the_csrf_token_to_write(world):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(world.users["owner"])
    assert client.get("/api/payment-methods/").status_code == 200
    response = client.put("/api/charge-order/", _order_of_a(world, "owner"), format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


def test_session_uses_the_consoles_current_account(world):
    owner = world.users["owner"]
    MembershipFactory(account=world.account_b, user=owner, role="owner")
    client = APIClient()
    client.force_login(owner)
    session = client.session
    session["current_account_id"] = world.account_b.pk
    session.save()
    assert _ids(client.get("/api/payment-methods/")) == {m.pk for m in world.methods_b}
