"""API: API tokens and the caller's accounts."""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status
from rest_framework.authtoken.models import Token
from rest_framework.generics import ListAPIView
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import error_responses

from .forms import ThrottledAuthenticationForm
from .selectors import memberships_for_user
from .serializers import MembershipSerializer, TokenRequestSerializer, TokenSerializer


class SignInThrottled(exceptions.Throttled):
    default_detail = _("Too many failed sign-in attempts. Try again later or reset your password.")


def _authenticate(request, *, username: str, password: str):
    """The console's sign-in check, so both share one failure counter (per username and address)."""
    form = ThrottledAuthenticationForm(request._request, data={"username": username, "password": password})
    if form.is_valid():
        return form.get_user()
    errors = form.errors.get_json_data()
    if any(error["code"] == "throttled" for error in errors.get("__all__", [])):
        raise SignInThrottled(detail=errors["__all__"][0]["message"])
    raise exceptions.ValidationError(
        {
            ("non_field_errors" if field == "__all__" else field): [
                error["message"] for error in field_errors
            ]
            for field, field_errors in errors.items()
        }
    )


@extend_schema(tags=["auth"])
class AuthTokenApi(APIView):
    """Exchange a username and password for an API token, or revoke the token."""

    def _signing_in(self) -> bool:
        # The schema generator builds its mock request before self.request is set.
        return getattr(self.request, "method", None) == "POST"

    def get_authenticators(self):
        # Signing in needs no credentials, and a stale token sent along must not stand in its way.
        return [] if self._signing_in() else super().get_authenticators()

    def get_permissions(self):
        return [AllowAny()] if self._signing_in() else super().get_permissions()

    @extend_schema(
        operation_id="auth_token_create",
        summary=_("Get an API token"),
        description=_(
            "Returns the user's API token, creating it if needed. Failed attempts are throttled "
            "with the console's sign-in limit."
        ),
        request=TokenRequestSerializer,
        responses={200: TokenSerializer, **error_responses(400, 429)},
        auth=[],
    )
    def post(self, request):
        serializer = TokenRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = _authenticate(request, **serializer.validated_data)
        token, _created = Token.objects.get_or_create(user=user)
        return Response(TokenSerializer({"token": token.key}).data)

    @extend_schema(
        operation_id="auth_token_destroy",
        summary=_("Revoke the API token"),
        description=_("Deletes the caller's API token; requests made with it are refused from now on."),
        request=None,
        responses={204: None, **error_responses(401, 403)},
    )
    def delete(self, request):
        Token.objects.filter(user=request.user).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["accounts"])
class AccountListApi(ListAPIView):
    """The accounts the caller is a member of, with their role; pick one with the X-Account header."""

    serializer_class = MembershipSerializer

    def get_queryset(self):
        return memberships_for_user(user=self.request.user)

    @extend_schema(
        operation_id="accounts_list",
        responses={200: MembershipSerializer(many=True), **error_responses(401, 404)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)
