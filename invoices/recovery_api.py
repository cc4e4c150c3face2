"""GET /api/staff/recovery/: the recovery report (invoices/recovery.py) for finance's own tools."""

import datetime

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import IsOperatorStaff, error_responses

from .recovery import RecoveryReport, default_period, period_error, recovery_report


class RecoveryQuerySerializer(serializers.Serializer):
    currency = serializers.RegexField(r"^[A-Z]{3}$", help_text=_("ISO 4217 code, such as USD."))
    start = serializers.DateField(
        required=False, help_text=_("First due date included (default: 90 days ago).")
    )
    end = serializers.DateField(required=False, help_text=_("Last due date included (default: today)."))

    def validate(self, attrs):
        start, end = default_period(timezone.localdate())
        attrs.setdefault("end", end)
        attrs.setdefault("start", start)
        if problem := period_error(attrs["start"], attrs["end"]):
            raise serializers.ValidationError({"end": problem})
        return attrs


class FigureSerializer(serializers.Serializer):
    invoices = serializers.IntegerField(source="count")
    amount_minor = serializers.IntegerField()


class PositionSerializer(serializers.Serializer):
    position = serializers.IntegerField(
        allow_null=True,
        help_text=_("1 is the primary, 2 the first backup; null: a method chosen for Pay now."),
    )
    label = serializers.CharField()
    invoices = serializers.IntegerField(source="paid.count")
    amount_minor = serializers.IntegerField(source="paid.amount_minor")


class AgeingSerializer(serializers.Serializer):
    from_days = serializers.IntegerField(source="first_day")
    to_days = serializers.IntegerField(
        source="last_day", allow_null=True, help_text=_("null: no upper bound.")
    )
    invoices = serializers.IntegerField(source="past_due.count")
    amount_minor = serializers.IntegerField(source="past_due.amount_minor")


class DeclineSerializer(serializers.Serializer):
    code = serializers.CharField()
    count = serializers.IntegerField()


class WeekSerializer(serializers.Serializer):
    week = serializers.DateField(help_text=_("The Monday that starts the week."))
    recovered_minor = serializers.IntegerField()


class RecoveryReportSerializer(serializers.Serializer):
    currency = serializers.CharField()
    start = serializers.DateField()
    end = serializers.DateField()
    as_of = serializers.DateField(help_text=_("The day past-due ages are counted on."))
    recovered = FigureSerializer(help_text=_("Invoices the primary did not pay and a backup did."))
    settled = FigureSerializer(help_text=_("Paid, past due and uncollectible."))
    paid = FigureSerializer()
    past_due = FigureSerializer()
    uncollectible = FigureSerializer()
    open = FigureSerializer(help_text=_("Not yet settled."))
    voided = FigureSerializer()
    by_position = PositionSerializer(many=True)
    ageing = AgeingSerializer(many=True)
    declines = DeclineSerializer(many=True)
    weekly = WeekSerializer(many=True)


@extend_schema(tags=["staff"])
class StaffRecoveryReportApi(APIView):
    """How much revenue the backups recovered, for invoices of one currency due in a period."""

    permission_classes = [IsOperatorStaff]

    @extend_schema(
        operation_id="staff_recovery_report",
        summary=_("Recovery report"),
        description=_(
            "For invoices in one currency due in a period: how many were paid and by which place in the "
            "charge order, the revenue recovered by backups, what is past due by age, what was written off, "
            "and the decline reasons. Amounts are integers of minor units. Staff only."
        ),
        parameters=[
            OpenApiParameter(
                "currency",
                str,
                required=True,
                pattern=r"^[A-Z]{3}$",
                allow_blank=False,
                description=_("ISO 4217 code, such as USD."),
            ),
            OpenApiParameter(
                "start", datetime.date, description=_("First due date included (default: 90 days ago).")
            ),
            OpenApiParameter("end", datetime.date, description=_("Last due date included (default: today).")),
        ],
        responses={200: RecoveryReportSerializer, **error_responses(400, 401, 403)},
    )
    def get(self, request):
        query = RecoveryQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        report: RecoveryReport = recovery_report(**query.validated_data, as_of=timezone.localdate())
        return Response(RecoveryReportSerializer(report).data)
