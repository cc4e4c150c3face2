"""API: a member's invoices with their attempts and "Pay now"; the operator's invoice issuing."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Prefetch
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer, extend_schema
from rest_framework import exceptions, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api_access import ACCOUNT_PERMISSIONS, AccountScopedSchema, request_account
from accounts.selectors import get_for_account, scoped
from accounts.services import actor_label_for
from core.api import Conflict, IsOperatorStaff, error_responses, id_parameter
from payments.models import PaymentMethod

from .models import Invoice, PaymentAttempt
from .refunds import visible_refunds
from .serializers import (
    AttemptSerializer,
    InvoiceFilterSerializer,
    InvoiceSerializer,
    IssuedInvoiceSerializer,
    PayRequestSerializer,
    PayResultSerializer,
    StaffInvoiceSerializer,
)
from .services import invoice_issue
from .settlement import Outcome, invoice_pay_now

MAX_ISSUE_BATCH = 1000


def invoices_of(account):
    return (
        scoped(Invoice.objects.all(), account=account)
        .select_related("paid_by_method")
        .prefetch_related(
            Prefetch(
                "attempts", queryset=PaymentAttempt.objects.select_related("method").order_by("sequence")
            ),
            visible_refunds(),
        )
    )


@extend_schema(tags=["invoices"])
class InvoiceListApi(ListAPIView):
    """The account's invoices, latest due first, each with its payment attempts."""

    schema = AccountScopedSchema()
    permission_classes = ACCOUNT_PERMISSIONS
    serializer_class = InvoiceSerializer

    def get_queryset(self):
        filters = InvoiceFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        invoices = invoices_of(request_account(self.request))
        if "status" in filters.validated_data:
            invoices = invoices.filter(status=filters.validated_data["status"])
        return invoices.order_by("-due_on", "-pk")

    @extend_schema(
        operation_id="invoices_list",
        parameters=[
            OpenApiParameter("status", enum=Invoice.Status.values, description=_("Only this status."))
        ],
        responses={200: InvoiceSerializer(many=True), **error_responses(400, 401, 403, 404)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


@extend_schema(tags=["invoices"], parameters=[id_parameter()])
class InvoiceDetailApi(APIView):
    schema = AccountScopedSchema()
    permission_classes = ACCOUNT_PERMISSIONS

    @extend_schema(
        operation_id="invoices_retrieve",
        responses={200: InvoiceSerializer, **error_responses(400, 401, 403, 404)},
    )
    def get(self, request, id):
        invoice = get_for_account(
            invoices_of(request_account(request)), account=request_account(request), pk=id
        )
        return Response(InvoiceSerializer(invoice).data)


@extend_schema(tags=["invoices"], parameters=[id_parameter()])
class InvoiceAttemptListApi(ListAPIView):
    """Every step of settling one invoice, oldest first: charges and the methods skipped, with why."""

    schema = AccountScopedSchema()
    permission_classes = ACCOUNT_PERMISSIONS
    serializer_class = AttemptSerializer

    def get_queryset(self):
        account = request_account(self.request)
        invoice = get_for_account(Invoice.objects.all(), account=account, pk=self.kwargs["id"])
        return invoice.attempts.select_related("method").order_by("sequence")

    @extend_schema(
        operation_id="invoices_attempts_list",
        responses={200: AttemptSerializer(many=True), **error_responses(400, 401, 403, 404)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


# What "Pay now" answers for each outcome: 200 when the payment was decided, 202 when the gateway's
# answer is still to come, 409 when nothing was attempted because of the invoice's state.
_PAY_STATUS = {
    Outcome.PAID: status.HTTP_200_OK,
    Outcome.DECLINED: status.HTTP_200_OK,
    Outcome.NOT_CHARGED: status.HTTP_200_OK,  # every method was skipped, each with its reason
    Outcome.PAST_DUE: status.HTTP_200_OK,
    Outcome.UNCOLLECTIBLE: status.HTTP_200_OK,
    Outcome.PENDING: status.HTTP_202_ACCEPTED,
    Outcome.UNKNOWN: status.HTTP_202_ACCEPTED,
    Outcome.LEASE_LOST: status.HTTP_202_ACCEPTED,
    Outcome.BUSY: status.HTTP_409_CONFLICT,
    Outcome.NOT_COLLECTABLE: status.HTTP_409_CONFLICT,
    Outcome.NOT_DUE: status.HTTP_409_CONFLICT,
    Outcome.ERROR: status.HTTP_500_INTERNAL_SERVER_ERROR,
}


class SettlementFailed(exceptions.APIException):
    status_code = status.HTTP_500_INTERNAL_SERVER_ERROR
    default_code = "error"


def _chosen_method(account, method_id: int | None) -> PaymentMethod | None:
    if method_id is None:
        return None
    # Another account's method reads exactly like one that does not exist.
    method = scoped(PaymentMethod.objects.all(), account=account).filter(pk=method_id).first()
    if method is None:
        raise exceptions.ValidationError(
            {"method": [_("Payment method %(id)s does not exist.") % {"id": method_id}]}
        )
    if not method.is_active:
        raise exceptions.ValidationError(
            {"method": [_("Payment method %(id)s has been removed.") % {"id": method_id}]}
        )
    return method


@extend_schema(tags=["invoices"], parameters=[id_parameter()])
class InvoicePayApi(APIView):
    schema = AccountScopedSchema()
    permission_classes = ACCOUNT_PERMISSIONS

    @extend_schema(
        operation_id="invoices_pay",
        summary=_("Pay now"),
        description=_(
            "Settles the invoice now, through the same code as the scheduled run: down the charge order, or "
            "with the one method chosen. 200 when the payment was decided (paid or declined: see `outcome`), "
            "202 when a bank debit is clearing or the gateway's answer is unknown (the next run resolves "
            "it), 409 when nothing was attempted (already paid, void, or being settled right now)."
        ),
        request=PayRequestSerializer,
        responses={
            200: PayResultSerializer,
            202: PayResultSerializer,
            **error_responses(400, 401, 403, 404, 409, 500),
        },
    )
    def post(self, request, id):
        account = request_account(request)
        invoice = get_for_account(Invoice.objects.all(), account=account, pk=id)
        serializer = PayRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        method = _chosen_method(account, serializer.validated_data.get("method"))
        result = invoice_pay_now(invoice=invoice, actor=request.user, method=method, request=request)
        answer = _PAY_STATUS.get(result.outcome, status.HTTP_500_INTERNAL_SERVER_ERROR)
        if answer == status.HTTP_409_CONFLICT:
            raise Conflict(detail=result.message, code=str(result.outcome))
        if answer == status.HTTP_500_INTERNAL_SERVER_ERROR:
            raise SettlementFailed(detail=result.message, code=str(result.outcome))
        body = {
            "outcome": str(result.outcome),
            "message": str(result.message),
            "paid_by_backup": result.paid_by_backup,
            "paid_position": result.paid_position,
            "attempts": result.attempts,
            "skipped": result.skipped,
            "invoice": invoices_of(account).get(pk=invoice.pk),
        }
        return Response(PayResultSerializer(body).data, status=answer)


_ISSUE_REQUEST = PolymorphicProxySerializer(
    component_name="StaffInvoiceIssue",
    serializers=[StaffInvoiceSerializer, StaffInvoiceSerializer(many=True)],
    resource_type_field_name=None,
    many=False,
)
_ISSUE_RESPONSE = PolymorphicProxySerializer(
    component_name="StaffInvoiceIssued",
    serializers=[IssuedInvoiceSerializer, IssuedInvoiceSerializer(many=True)],
    resource_type_field_name=None,
    many=False,
)


@extend_schema(tags=["staff"])
class StaffInvoiceIssueApi(APIView):
    """For the operator's metering system: issue invoices, idempotent on the invoice number."""

    permission_classes = [IsOperatorStaff]

    @extend_schema(
        operation_id="staff_invoices_issue",
        summary=_("Issue invoices"),
        description=_(
            "One invoice (an object) or many (a list, issued all or none). Sending a number again with the "
            "same details changes nothing and answers 200; 201 when at least one invoice was created; 409 "
            "when a number was already issued with other details (then nothing is issued). Staff only."
        ),
        request=_ISSUE_REQUEST,
        responses={200: _ISSUE_RESPONSE, 201: _ISSUE_RESPONSE, **error_responses(400, 401, 403, 409)},
    )
    def post(self, request):
        many = isinstance(request.data, list)
        serializer = (
            StaffInvoiceSerializer(
                data=request.data, many=True, allow_empty=False, max_length=MAX_ISSUE_BATCH
            )
            if many
            else StaffInvoiceSerializer(data=request.data)
        )
        serializer.is_valid(raise_exception=True)
        items = serializer.validated_data if many else [serializer.validated_data]
        actor_label = actor_label_for(request.user)
        issued = []
        try:
            with transaction.atomic():
                for attrs in items:
                    invoice, created = invoice_issue(
                        data=StaffInvoiceSerializer.to_invoice_data(attrs), actor_label=actor_label
                    )
                    invoice.issued_now = created
                    issued.append(invoice)
        except DjangoValidationError as exc:
            # The accounts and the details were checked above: what is left is a number already issued
            # with other details.
            raise Conflict(detail=" ".join(exc.messages), code="number_conflict") from None
        data = IssuedInvoiceSerializer(issued, many=True).data
        any_created = any(invoice.issued_now for invoice in issued)
        return Response(
            data if many else data[0], status=status.HTTP_201_CREATED if any_created else status.HTTP_200_OK
        )
