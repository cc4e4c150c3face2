"""The API's side of saving a method with Stripe.js (``PAYMENT_GATEWAY=stripe``).

A client asks POST /api/payment-methods/setup/ for a SetupIntent's client secret, confirms it with
Stripe.js (the number or IBAN goes to Stripe only), and posts the SetupIntent's id to
POST /api/payment-methods/, which keeps what Stripe reads back through the same service as the console.
"""

from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api_access import ACCOUNT_PERMISSIONS, AccountScopedSchema, request_account
from core.api import Conflict, error_responses

from . import services
from .api_errors import AddMethodThrottled, GatewayUnavailableError
from .forms import SENSITIVE_FIELDS
from .gateways.base import GatewayError, InvalidPaymentDetails
from .ratelimit import add_method_blocked, add_method_failure_record
from .serializers import (
    PaymentMethodSetupOutputSerializer,
    PaymentMethodSetupSerializer,
    StripeMethodCreateSerializer,
)
from .stripe_views import stripe_collects


@sensitive_variables("data")
def stripe_method_create(request, account):
    """POST /api/payment-methods/ with the Stripe gateway: the method Stripe.js saved, by its id.
    Returns the new method; a method Stripe refuses counts toward the account's hourly limit (a
    malformed request does not: it never reached the processor)."""
    try:
        data = request.data if isinstance(request.data, dict) else {}
        sent_details = sorted(set(data) & set(SENSITIVE_FIELDS))
        if sent_details:
            raise exceptions.ValidationError(
                {
                    field: [_("Payment details go to Stripe.js, never to this API: send the payment_method.")]
                    for field in sent_details
                }
            )
        serializer = StripeMethodCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return services.payment_method_setup_finish(
            account=account,
            actor=request.user,
            kind=serializer.validated_data["kind"],
            reference=serializer.validated_data["payment_method"],
            add_to_order=serializer.validated_data["add_to_order"],
            request=request,
        )
    except InvalidPaymentDetails:
        add_method_failure_record(account_id=account.pk)
        raise


@extend_schema(tags=["payment methods"])
class PaymentMethodSetupApi(APIView):
    schema = AccountScopedSchema()
    permission_classes = ACCOUNT_PERMISSIONS

    @extend_schema(
        operation_id="payment_methods_setup",
        summary=_("Start saving a payment method with Stripe.js"),
        description=_(
            "With the Stripe gateway only (409 otherwise). Creates a SetupIntent for off-session "
            "charges on the account's Stripe customer. Confirm its `client_secret` with Stripe.js "
            "(`confirmCardSetup` or `confirmSepaDebitSetup`, showing the SEPA mandate text), then send "
            'the PaymentMethod it saved, `{"kind": …, "payment_method": "pm_…"}`, to '
            "POST /api/payment-methods/."
        ),
        request=PaymentMethodSetupSerializer,
        responses={
            201: PaymentMethodSetupOutputSerializer,
            **error_responses(400, 401, 403, 404, 409, 429, 503),
        },
        examples=[OpenApiExample("Card", request_only=True, value={"kind": "card"})],
    )
    def post(self, request):
        account = request_account(request)
        if not stripe_collects():
            raise Conflict(
                _("This gateway takes the details in POST /api/payment-methods/: there is nothing to set up.")
            )
        if add_method_blocked(account_id=account.pk):
            raise AddMethodThrottled()
        serializer = PaymentMethodSetupSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            setup = services.payment_method_setup_start(
                account=account, kind=serializer.validated_data["kind"]
            )
        except GatewayError:
            raise GatewayUnavailableError() from None
        output = {
            "kind": setup.kind,
            "setup_intent": setup.reference,
            "client_secret": setup.client_secret,
            "publishable_key": setup.publishable_key,
        }
        return Response(PaymentMethodSetupOutputSerializer(output).data, status=status.HTTP_201_CREATED)
