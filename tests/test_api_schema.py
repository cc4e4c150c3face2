"""The OpenAPI schema and the interactive docs: complete, valid, served without a CDN."""

import re

import jsonschema
import pytest
import yaml
from django.contrib.staticfiles import finders
from django.core.management import call_command
from rest_framework.test import APIClient

from payments.models import PaymentMethod
from payments.serializers import CREATE_SERIALIZERS

pytestmark = pytest.mark.django_db

OPERATIONS = {
    ("/api/auth/token/", "post"): {200, 400, 429},
    ("/api/auth/token/", "delete"): {204, 401, 403},
    ("/api/accounts/", "get"): {200, 401, 404},
    ("/api/account/billing-contacts/", "get"): {200, 400, 401, 403, 404},
    ("/api/account/billing-contacts/", "put"): {200, 400, 401, 403, 404},
    ("/api/members/", "get"): {200, 400, 401, 403, 404},
    ("/api/members/{id}/", "get"): {200, 400, 401, 403, 404},
    ("/api/members/{id}/", "patch"): {200, 400, 401, 403, 404},
    ("/api/members/{id}/", "delete"): {204, 400, 401, 403, 404},
    ("/api/invitations/", "get"): {200, 400, 401, 403, 404},
    ("/api/invitations/", "post"): {201, 400, 401, 403, 404},
    ("/api/invitations/{id}/", "get"): {200, 400, 401, 403, 404},
    ("/api/invitations/{id}/", "delete"): {204, 400, 401, 403, 404},
    ("/api/payment-methods/", "get"): {200, 400, 401, 403, 404},
    ("/api/payment-methods/", "post"): {201, 400, 401, 403, 404, 409, 429, 503},
    ("/api/payment-methods/setup/", "post"): {201, 400, 401, 403, 404, 409, 429, 503},
    ("/api/payment-methods/{id}/", "get"): {200, 400, 401, 403, 404},
    ("/api/payment-methods/{id}/", "delete"): {204, 400, 401, 403, 404},
    ("/api/charge-order/", "get"): {200, 400, 401, 403, 404},
    ("/api/charge-order/", "put"): {200, 400, 401, 403, 404},
    ("/api/invoices/", "get"): {200, 400, 401, 403, 404},
    ("/api/invoices/export/", "get"): {200, 400, 401, 403, 404},
    ("/api/invoices/{id}/", "get"): {200, 400, 401, 403, 404},
    ("/api/invoices/{id}/pdf/", "get"): {200, 400, 401, 403, 404},
    ("/api/invoices/{id}/attempts/", "get"): {200, 400, 401, 403, 404},
    ("/api/invoices/{id}/pay/", "post"): {200, 202, 400, 401, 403, 404, 409, 500},
    ("/api/staff/invoices/", "post"): {200, 201, 400, 401, 403, 409},
    ("/api/staff/recovery/", "get"): {200, 400, 401, 403},
}


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    with django_db_blocker.unblock():
        response = APIClient().get("/api/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def test_the_schema_validates_without_a_warning(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))


def test_every_endpoint_and_error_response_is_documented(schema):
    documented = {
        (path, method): {int(code) for code in operation["responses"]}
        for path, item in schema["paths"].items()
        for method, operation in item.items()
    }
    assert documented == OPERATIONS


def test_errors_share_one_documented_shape(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            for code, response in operation["responses"].items():
                if int(code) >= 400:
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    expected = "ValidationError" if code == "400" else "Error"
                    assert ref.endswith(f"/{expected}"), (path, method, code)


def test_secrets_are_write_only(schema):
    components = schema["components"]["schemas"]
    for name, field in [
        ("CardCreateRequest", "number"),
        ("CardCreateRequest", "cvc"),
        ("SepaDebitCreateRequest", "iban"),
        ("AchDebitCreateRequest", "account_number"),
    ]:
        assert components[name]["properties"][field]["writeOnly"] is True
    assert "token" not in components["PaymentMethod"]["properties"]
    assert "fingerprint" not in components["PaymentMethod"]["properties"]


def test_token_and_session_authentication_are_declared(schema):
    assert set(schema["components"]["securitySchemes"]) == {"tokenAuth", "cookieAuth"}
    assert schema["paths"]["/api/auth/token/"]["post"].get("security", []) in ([], [{}])


def test_the_docs_page_uses_the_projects_own_assets():
    response = APIClient().get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert not re.search(r"""(src|href)=["']https?://""", html), "no asset from a CDN"
    assets = re.findall(r"""(?:src|href)=["']/static/([^"'?]+)""", html)
    assert any(asset.endswith("swagger-ui-bundle.js") for asset in assets)
    for asset in assets:
        assert finders.find(asset), asset
    # The page's own script is a separate request, so the strict script-src 'self' holds.
    assert "<script>" not in html
    script = APIClient().get("/api/docs/?script=")
    assert script.status_code == 200
    assert "/api/schema/" in script.content.decode()
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp.split("script-src", 1)[1].split(";")[0]


def _request_body_validator(schema, path: str, method: str) -> jsonschema.Draft202012Validator:
    body = schema["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
    return jsonschema.Draft202012Validator({**body, "components": schema["components"]})


def test_a_new_method_body_is_an_object_of_exactly_one_kind(schema):
    """POST /api/payment-methods/ takes one object, of one kind: the schema says so, and says which
    schema each ``kind`` selects, so a client or a fuzzer cannot take ``0`` for a valid body."""
    # Details the gateway tokenises (one object of one kind), or, with Stripe, the id Stripe.js saved.
    components = schema["components"]["schemas"]
    assert [branch["$ref"] for branch in components["PaymentMethodCreateRequest"]["oneOf"]] == [
        "#/components/schemas/PaymentMethodDetailsCreateRequest",
        "#/components/schemas/StripeMethodCreateRequest",
    ]
    assert components["StripeMethodCreateRequest"]["type"] == "object"
    body = components["PaymentMethodDetailsCreateRequest"]
    assert body["type"] == "object" and body["required"] == ["kind"]
    kinds = {kind.value for kind in PaymentMethod.Kind}
    assert body["discriminator"]["propertyName"] == "kind"
    mapping = body["discriminator"]["mapping"]
    assert set(mapping) == set(CREATE_SERIALIZERS) and set(CREATE_SERIALIZERS) <= kinds
    assert sorted(mapping.values()) == sorted(branch["$ref"] for branch in body["oneOf"])
    for kind, ref in mapping.items():
        branch = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
        kind_schema = schema["components"]["schemas"][branch["properties"]["kind"]["$ref"].rsplit("/", 1)[1]]
        assert kind_schema["enum"] == [kind], ref

    validator = _request_body_validator(schema, "/api/payment-methods/", "post")
    for not_a_body in (0, 1.5, "card", [], [{"kind": "card"}], None, True, {}, {"kind": "paypal"}):
        assert not validator.is_valid(not_a_body), not_a_body
    examples = schema["paths"]["/api/payment-methods/"]["post"]["requestBody"]["content"]["application/json"]
    for example in examples["examples"].values():
        assert validator.is_valid(example["value"]), example
    # A card's fields under another kind match no branch.
    assert not validator.is_valid({**examples["examples"]["Card"]["value"], "kind": "sepa_debit"})
