"""API tokens: POST /api/auth/token/ and DELETE /api/auth/token/, with the console's sign-in limit."""

import pytest
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.forms import signin_failure_record
from tests.factories import MembershipFactory, TokenFactory, UserFactory

pytestmark = pytest.mark.django_db

URL = "/api/auth/token/"
PASSWORD = "auth-Password-1"


@pytest.fixture(autouse=True)
def _fresh():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def member():
    return MembershipFactory(user__username="ada", user__password=PASSWORD).user


def test_a_username_and_password_give_a_token_that_authenticates(member):
    response = APIClient().post(URL, {"username": "ada", "password": PASSWORD}, format="json")
    assert response.status_code == 200
    token = response.json()["token"]
    assert Token.objects.get(user=member).key == token
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/payment-methods/").status_code == 200


def test_asking_again_returns_the_same_token(member):
    first = APIClient().post(URL, {"username": "ada", "password": PASSWORD}, format="json").json()
    second = APIClient().post(URL, {"username": "ada", "password": PASSWORD}, format="json").json()
    assert first == second


def test_a_wrong_password_is_a_400_with_a_message(member):
    response = APIClient().post(URL, {"username": "ada", "password": "wrong"}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert body["errors"]["non_field_errors"] == [
        "That username and password do not match. Check them and try again."
    ]
    assert not Token.objects.exists()


def test_missing_fields_are_field_errors():
    response = APIClient().post(URL, {}, format="json")
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"username", "password"}


def test_an_inactive_user_gets_no_token():
    UserFactory(username="gone", password=PASSWORD, is_active=False)
    response = APIClient().post(URL, {"username": "gone", "password": PASSWORD}, format="json")
    assert response.status_code == 400


def test_a_stale_token_sent_along_does_not_stop_signing_in(member):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = client.post(URL, {"username": "ada", "password": PASSWORD}, format="json")
    assert response.status_code == 200


def test_failures_are_throttled_with_the_consoles_limit(member, settings):
    settings.SIGNIN_FAILURES_ALLOWED = 3
    client = APIClient()
    for _ in range(3):
        assert client.post(URL, {"username": "ada", "password": "wrong"}, format="json").status_code == 400
    # Blocked now, even with the right password.
    response = client.post(URL, {"username": "ada", "password": PASSWORD}, format="json")
    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    assert "Too many failed sign-in attempts" in response.json()["detail"]


def test_console_failures_count_for_the_api(member, settings):
    settings.SIGNIN_FAILURES_ALLOWED = 2
    for _ in range(2):
        signin_failure_record(username="ada", ip="127.0.0.1")
    response = APIClient().post(URL, {"username": "ada", "password": PASSWORD}, format="json")
    assert response.status_code == 429


def test_revoking_the_token_ends_it():
    token = TokenFactory(user=MembershipFactory().user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.delete(URL).status_code == 204
    assert not Token.objects.filter(pk=token.pk).exists()
    response = client.get("/api/invoices/")
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_revoking_needs_credentials():
    response = APIClient().delete(URL)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_a_session_may_revoke_the_users_token_with_its_csrf_token():
    token = TokenFactory(user=MembershipFactory().user)
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(token.user)
    assert client.delete(URL).status_code == 403  # no CSRF token
    assert Token.objects.filter(pk=token.pk).exists()
