"""API errors in the caller's language (Accept-Language): DRF's own messages and ours."""

import pytest
from django.conf import settings
from django.utils import translation
from rest_framework.test import APIClient

from tests.factories import AccountFactory, MembershipFactory, PaymentMethodFactory, TokenFactory

pytestmark = pytest.mark.django_db

JA = {"HTTP_ACCEPT_LANGUAGE": "ja"}


@pytest.fixture(autouse=True)
def _back_to_english():
    """A request in Japanese leaves the test thread in Japanese (the middleware activates the
    language for the request; in a server the next request activates its own): reset it, so that
    the tests after these ones, commands included, run in English again."""
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture
def membership():
    return MembershipFactory(account=AccountFactory(currency="JPY"))


@pytest.fixture
def client(membership):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {TokenFactory(user=membership.user).key}")
    return client


def test_drf_messages_in_japanese():
    response = APIClient().get("/api/charge-order/", **JA)
    assert response.status_code == 401
    assert response["Content-Language"] == "ja"
    assert response.json()["detail"] == "認証情報が含まれていません。"
    response = APIClient().get("/api/charge-order/", HTTP_AUTHORIZATION="Token nope", **JA)
    assert response.json()["detail"] == "不正なトークンです。"


def test_field_messages_in_japanese(client):
    response = client.put("/api/charge-order/", {}, format="json", **JA)
    assert response.status_code == 400
    assert response.json()["errors"]["primary"] == ["この項目は必須です。"]


def test_our_messages_in_japanese(client, membership):
    a, b = (PaymentMethodFactory(account=membership.account) for _ in range(2))
    response = client.put("/api/charge-order/", {"primary": a.pk, "backups": [a.pk]}, format="json", **JA)
    assert response.status_code == 400
    assert response.json()["errors"]["non_field_errors"] == [
        f"お支払い方法 {a.pk} が複数回指定されています。"
    ]
    response = client.put("/api/charge-order/", {"primary": a.pk, "backups": [b.pk]}, format="json", **JA)
    assert [e["position_label"] for e in response.json()["entries"]] == ["メイン", "予備 1"]
    # The same request in English.
    response = client.put("/api/charge-order/", {"primary": a.pk, "backups": [a.pk]}, format="json")
    assert response.json()["errors"]["non_field_errors"] == [f"Payment method {a.pk} appears more than once."]


def test_a_missing_object_in_japanese(client):
    response = client.get("/api/invoices/999999/", **JA)
    assert response.status_code == 404
    assert response.json()["detail"] == "見つかりませんでした。"


def test_a_token_member_gets_their_saved_language_without_accept_language(client, membership):
    from accounts.models import Profile

    Profile.objects.create(user=membership.user, language="ja")
    response = client.put("/api/charge-order/", {}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"]["primary"] == ["この項目は必須です。"]
