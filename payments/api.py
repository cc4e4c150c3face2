"""API: payment methods and the charge order. Thin views over payments.services."""

from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables
from drf_spectacular.utils import OpenApiExample, PolymorphicProxySerializer, extend_schema
from rest_framework import exceptions, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api_access import ACCOUNT_PERMISSIONS, AccountScopedSchema, request_account
from accounts.selectors import get_for_account, scoped
from core.api import error_responses, id_parameter, one_kind_of

from . import services
from .api_errors import AddMethodThrottled
from .gateways.base import InvalidPaymentDetails
from .models import ChargeOrderEntry, PaymentMethod
from .ratelimit import add_method_blocked, add_method_failure_record
from .serializers import (
    CREATE_SERIALIZER_CLASSES,
    CREATE_SERIALIZERS,
    ChargeOrderOutputSerializer,
    ChargeOrderSerializer,
    PaymentMethodSerializer,
    StripeMethodCreateSerializer,
)
from .stripe_api import stripe_method_create
from .stripe_views import stripe_collects

_ADD = {
    PaymentMethod.Kind.CARD: services.payment_method_add_card,
    PaymentMethod.Kind.SEPA_DEBIT: services.payment_method_add_sepa_debit,
    PaymentMethod.Kind.ACH_DEBIT: services.payment_method_add_ach_debit,
}

# A sandbox body is one object of one kind (chosen by `kind`); with the Stripe gateway a card or
# SEPA account is sent as its id at Stripe instead, under the same kinds: a second alternative.
_CREATE_REQUEST = PolymorphicProxySerializer(
    component_name="PaymentMethodCreate",
    serializers=[
        one_kind_of("PaymentMethodDetailsCreate", CREATE_SERIALIZER_CLASSES),
        StripeMethodCreateSerializer,
    ],
    resource_type_field_name=None,
)


def methods_on_file(account):
    """Active methods of ``account`` with their rank; a removed method is gone from the API."""
    return scoped(PaymentMethod.objects.active(), account=account).select_related("rank").order_by("pk")


@extend_schema(tags=["payment methods"])
class PaymentMethodListApi(ListAPIView):
    """Payment methods on file, and adding one (tokenised by the gateway; the number goes no further)."""

    schema = AccountScopedSchema()
    permission_classes = ACCOUNT_PERMISSIONS
    serializer_class = PaymentMethodSerializer

    def get_queryset(self):
        return methods_on_file(request_account(self.request))

    @extend_schema(
        operation_id="payment_methods_list",
        responses={200: PaymentMethodSerializer(many=True), **error_responses(400, 401, 403, 404)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="payment_methods_create",
        summary=_("Add a payment method"),
        description=_(
            "Card, SEPA Direct Debit (EUR) or US bank account (USD), chosen by `kind`. The details are "
            "tokenised by the gateway and never stored or returned. With the Stripe gateway the details "
            "go to Stripe.js, never here: start with POST /api/payment-methods/setup/ and send the "
            "`payment_method` Stripe.js saved (StripeMethodCreateRequest). A method the account already "
            "keeps (the same card or bank account, by the gateway's fingerprint) is refused with 409, "
            "naming it. Every set of details the gateway refuses counts toward the account's hourly "
            "limit, shared with the console (a request refused for its form, such as a number failing "
            "its check digit, does not); past it the answer is 429."
        ),
        request=_CREATE_REQUEST,
        responses={201: PaymentMethodSerializer, **error_responses(400, 401, 403, 404, 409, 429, 503)},
        examples=[
            OpenApiExample(
                "Card",
                request_only=True,
                value={
                    "kind": "card",
                    "number": "4242424242424242",
                    "exp_month": 12,
                    "exp_year": 2034,
                    "cvc": "123",
                },
            ),
            OpenApiExample(
                "SEPA Direct Debit",
                request_only=True,
                value={"kind": "sepa_debit", "iban": "DE89370400440532013000", "account_holder": "Jane Doe"},
            ),
            OpenApiExample(
                "US bank account",
                request_only=True,
                value={
                    "kind": "ach_debit",
                    "routing_number": "110000000",
                    "account_number": "000123456789",
                    "account_holder": "Jane Doe",
                },
            ),
            OpenApiExample(
                "Saved with Stripe.js",
                request_only=True,
                value={"kind": "card", "payment_method": "pm_1Q2w3E4r5T6y7U8i"},
            ),
        ],
    )
    @sensitive_variables("details")
    def post(self, request, *args, **kwargs):
        account = request_account(request)
        if add_method_blocked(account_id=account.pk):
            raise AddMethodThrottled()
        if stripe_collects():
            method = stripe_method_create(request, account)
            method = methods_on_file(account).get(pk=method.pk)
            return Response(PaymentMethodSerializer(method).data, status=status.HTTP_201_CREATED)
        kind = request.data.get("kind") if isinstance(request.data, dict) else None
        serializer_class = CREATE_SERIALIZERS.get(kind) if isinstance(kind, str) else None
        if serializer_class is None:
            raise exceptions.ValidationError(
                {"kind": [_("Choose the kind of method: card, sepa_debit or ach_debit.")]}
            )
        serializer = serializer_class(data=request.data)
        serializer.is_valid(raise_exception=True)
        details = dict(serializer.validated_data)
        del details["kind"]
        try:
            method = _ADD[kind](account=account, actor=request.user, request=request, **details)
        except InvalidPaymentDetails:
            # Card testing: details the gateway refused count, as in the console.
            add_method_failure_record(account_id=account.pk)
            raise
        method = methods_on_file(account).get(pk=method.pk)
        return Response(PaymentMethodSerializer(method).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["payment methods"], parameters=[id_parameter()])
class PaymentMethodDetailApi(APIView):
    schema = AccountScopedSchema()
    permission_classes = ACCOUNT_PERMISSIONS

    def get_method(self, request, id) -> PaymentMethod:
        return get_for_account(
            methods_on_file(request_account(request)), account=request_account(request), pk=id
        )

    @extend_schema(
        operation_id="payment_methods_retrieve",
        responses={200: PaymentMethodSerializer, **error_responses(400, 401, 403, 404)},
    )
    def get(self, request, id):
        return Response(PaymentMethodSerializer(self.get_method(request, id)).data)

    @extend_schema(
        operation_id="payment_methods_destroy",
        summary=_("Remove a payment method"),
        description=_("It leaves the charge order (backup 1 becomes the primary if it was the primary)."),
        request=None,
        responses={204: None, **error_responses(400, 401, 403, 404)},
    )
    def delete(self, request, id):
        services.payment_method_remove(
            method=self.get_method(request, id), actor=request.user, request=request
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


def charge_order_data(account) -> dict:
    # One query, so a reader sees one complete order, never half of a concurrent change.
    entries = list(
        scoped(ChargeOrderEntry.objects.all(), account=account).select_related("method").order_by("position")
    )
    ids = [entry.method_id for entry in entries]
    return {
        "primary": ids[0] if ids else None,
        "backups": ids[1:],
        "entries": [
            {"position": entry.position, "position_label": entry.position_label, "method": entry.method}
            for entry in entries
        ],
    }


@extend_schema(tags=["charge order"])
class ChargeOrderApi(APIView):
    """The order methods are charged in: the primary, then the backups in rank."""

    schema = AccountScopedSchema()
    permission_classes = ACCOUNT_PERMISSIONS

    @extend_schema(
        operation_id="charge_order_retrieve",
        responses={200: ChargeOrderOutputSerializer, **error_responses(400, 401, 403, 404)},
    )
    def get(self, request):
        return Response(ChargeOrderOutputSerializer(charge_order_data(request_account(request))).data)

    @extend_schema(
        operation_id="charge_order_update",
        summary=_("Replace the charge order"),
        description=_(
            "Replaces the whole order at once. An order naming a method twice, a removed method, a method "
            "that is not the account's, or more backups than `max_backups` is refused whole (400, one "
            "message per problem) and nothing changes."
        ),
        request=ChargeOrderSerializer,
        responses={200: ChargeOrderOutputSerializer, **error_responses(400, 401, 403, 404)},
        examples=[
            OpenApiExample(
                "Primary and two backups", request_only=True, value={"primary": 2, "backups": [1, 3]}
            )
        ],
    )
    def put(self, request):
        account = request_account(request)
        serializer = ChargeOrderSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.charge_order_set(
            account=account,
            actor=request.user,
            method_ids=ChargeOrderSerializer.method_ids(serializer.validated_data),
            request=request,
        )
        return Response(ChargeOrderOutputSerializer(charge_order_data(account)).data)
