from django.utils.translation import gettext_lazy as _
from rest_framework import serializers
from rest_framework.settings import api_settings

from accounts.models import Account
from core.api import (
    ID_SCHEMA,
    StrictCharField,
    StrictDateField,
    StrictIntegerField,
)
from core.money import format_money
from payments.serializers import PaymentMethodSummarySerializer

from .models import Invoice, PaymentAttempt, Refund
from .services import InvoiceData, invoice_data_validate
from .settlement import Outcome

MAX_ID = ID_SCHEMA["maximum"]


class AttemptSerializer(serializers.ModelSerializer):
    """One step of settling an invoice: a charge of one method, or a method skipped and why."""

    method = PaymentMethodSummarySerializer(read_only=True, allow_null=True)
    position = serializers.IntegerField(
        read_only=True, allow_null=True, help_text=_("The method's rank when it was tried: 1 is the primary.")
    )
    # Blank when they do not apply (a charge has no skip reason, a success no decline class).
    decline_class = serializers.ChoiceField(
        choices=PaymentAttempt.DeclineClass, allow_blank=True, read_only=True
    )
    skip_reason = serializers.ChoiceField(choices=PaymentAttempt.SkipReason, allow_blank=True, read_only=True)
    skip_reason_display = serializers.CharField(source="get_skip_reason_display", read_only=True)

    class Meta:
        model = PaymentAttempt
        fields = [
            "id",
            "sequence",
            "status",
            "method",
            "position",
            "retry_round",
            "amount_minor",
            "currency",
            "decline_code",
            "decline_class",
            "skip_reason",
            "skip_reason_display",
            "message",
            "trigger",
            "created_at",
            "completed_at",
        ]
        read_only_fields = fields


class RefundSerializer(serializers.ModelSerializer):
    """Money given back on a paid invoice: ``started`` or ``unknown`` while on its way, then
    ``succeeded``. Refunds the gateway refused are left out."""

    status = serializers.ChoiceField(
        choices=[(s, label) for s, label in Refund.Status.choices if s != Refund.Status.FAILED],
        read_only=True,
    )

    class Meta:
        model = Refund
        fields = ["id", "amount_minor", "currency", "status", "created_at", "completed_at"]
        read_only_fields = fields


class InvoiceSerializer(serializers.ModelSerializer):
    amount_display = serializers.SerializerMethodField(
        help_text=_("The amount for people, with the currency's own rules.")
    )
    paid_by_method = PaymentMethodSummarySerializer(read_only=True, allow_null=True)
    attempts = AttemptSerializer(many=True, read_only=True)
    refunds = RefundSerializer(many=True, read_only=True, source="visible_refunds")
    refunded_minor = serializers.SerializerMethodField(
        help_text=_("What has been given back so far, in minor units (refunds that succeeded).")
    )

    class Meta:
        model = Invoice
        fields = [
            "id",
            "number",
            "description",
            "currency",
            "amount_minor",
            "amount_display",
            "issued_on",
            "due_on",
            "status",
            "next_attempt_at",
            "paid_at",
            "paid_by_method",
            "paid_by_backup",
            "voided_at",
            "created_at",
            "attempts",
            "refunds",
            "refunded_minor",
        ]
        read_only_fields = fields

    def get_amount_display(self, invoice) -> str:
        return format_money(invoice.amount_minor, invoice.currency)

    def get_refunded_minor(self, invoice) -> int:
        return sum(r.amount_minor for r in invoice.visible_refunds if r.status == Refund.Status.SUCCEEDED)


class InvoiceFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Invoice.Status, required=False)


class PayRequestSerializer(serializers.Serializer):
    method = StrictIntegerField(
        min_value=1,
        max_value=MAX_ID,
        required=False,
        allow_null=True,
        help_text=_("Charge only this method of the account; without it, the charge order is followed."),
    )


class PayResultSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=[outcome.value for outcome in Outcome])
    message = serializers.CharField(allow_blank=True)
    paid_by_backup = serializers.BooleanField()
    paid_position = serializers.IntegerField(allow_null=True)
    attempts_made = serializers.IntegerField(source="attempts")
    methods_skipped = serializers.IntegerField(source="skipped")
    invoice = InvoiceSerializer()


class StaffInvoiceSerializer(serializers.Serializer):
    """An invoice as the operator's metering system sends it; the number makes it idempotent.

    The fields check only what was sent is of the right type; the rules are ``invoice_data_validate``,
    the import's too, and each problem is answered under its field.
    """

    # The rules' names for the fields, where this API's differ.
    FIELDS = {"account_id": "account", "": api_settings.NON_FIELD_ERRORS_KEY}

    account = StrictIntegerField(min_value=1, max_value=MAX_ID, help_text=_("The account's id."))
    number = StrictCharField(help_text=_("1 to 64 characters, unique: sending it again changes nothing."))
    currency = StrictCharField(help_text=_("ISO 4217, such as USD or JPY."))
    amount_minor = StrictIntegerField(
        help_text=_(
            "In minor units of the currency: cents, yen (no decimals), fils (three decimals); at most "
            "BILLING_MAX_INVOICE_AMOUNT in major units (1,000,000 unless configured)."
        ),
    )
    issued_on = StrictDateField()
    due_on = StrictDateField()
    description = StrictCharField(
        required=False, allow_blank=True, default="", help_text=_("Up to 300 characters, on one line.")
    )

    def validate_account(self, value):
        # Staff see every account, so naming one that does not exist may say so.
        if not Account.objects.filter(pk=value).exists():
            raise serializers.ValidationError(_("Account %(id)s does not exist.") % {"id": value})
        return value

    def validate(self, attrs):
        errors: dict[str, list[str]] = {}
        for problem in invoice_data_validate(self.to_invoice_data(attrs)):
            errors.setdefault(self.FIELDS.get(problem.field, problem.field), []).append(problem.message)
        if errors:
            raise serializers.ValidationError(errors)
        return attrs

    @staticmethod
    def to_invoice_data(attrs) -> InvoiceData:
        return InvoiceData(
            account_id=attrs["account"],
            number=attrs["number"],
            currency=attrs["currency"],
            amount_minor=attrs["amount_minor"],
            issued_on=attrs["issued_on"],
            due_on=attrs["due_on"],
            description=attrs.get("description", ""),
        )


class IssuedInvoiceSerializer(serializers.ModelSerializer):
    account = serializers.IntegerField(source="account_id")
    created = serializers.BooleanField(
        source="issued_now",
        help_text=_("False when this number was already issued with these details (nothing changed)."),
    )

    class Meta:
        model = Invoice
        fields = [
            "id",
            "account",
            "number",
            "currency",
            "amount_minor",
            "issued_on",
            "due_on",
            "description",
            "status",
            "created",
        ]
        read_only_fields = fields
