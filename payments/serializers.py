from django.conf import settings
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.api import ID_SCHEMA, StrictBooleanField, StrictCharField, StrictIntegerField, kinds_of

from .models import PaymentMethod

MAX_ID = ID_SCHEMA["maximum"]


def _rank(method: PaymentMethod):
    # The reverse one-to-one comes from select_related("rank"); a method outside the order has none.
    return getattr(method, "rank", None)


class PaymentMethodSerializer(serializers.ModelSerializer):
    """A method on file, as much as may be shown: never a full number, never the gateway's token."""

    label = serializers.CharField(read_only=True, help_text=_('For people: "Visa •••• 4242".'))
    expires_on = serializers.SerializerMethodField(help_text=_("The last day it can be charged (cards)."))
    blocked = serializers.SerializerMethodField(
        help_text=_("A hard decline stops automatic charges until the method is updated.")
    )
    position = serializers.SerializerMethodField(
        help_text=_("Rank in the charge order: 1 is the primary, 2.. are backups; null if not in it.")
    )
    position_label = serializers.SerializerMethodField()

    class Meta:
        model = PaymentMethod
        fields = [
            "id",
            "kind",
            "label",
            "brand",
            "last4",
            "exp_month",
            "exp_year",
            "expires_on",
            "bank_name",
            "blocked",
            "blocked_reason",
            "position",
            "position_label",
            "created_at",
        ]
        read_only_fields = fields

    @extend_schema_field({"type": "string", "format": "date", "nullable": True})
    def get_expires_on(self, method):
        expires = method.expires_on()
        return expires.isoformat() if expires else None

    def get_blocked(self, method) -> bool:
        return method.blocked_at is not None

    @extend_schema_field({"type": "integer", "minimum": 1, "nullable": True})
    def get_position(self, method):
        rank = _rank(method)
        return rank.position if rank else None

    @extend_schema_field({"type": "string", "nullable": True})
    def get_position_label(self, method):
        rank = _rank(method)
        return str(rank.position_label) if rank else None


class PaymentMethodSummarySerializer(serializers.ModelSerializer):
    """A method named in an attempt or an invoice; it may have been removed since."""

    label = serializers.CharField(read_only=True)

    class Meta:
        model = PaymentMethod
        fields = ["id", "kind", "label", "status"]
        read_only_fields = fields


class _MethodCreateSerializer(serializers.Serializer):
    add_to_order = StrictBooleanField(
        default=True, help_text=_("Rank it last in the charge order if there is room.")
    )


class CardCreateSerializer(_MethodCreateSerializer):
    kind = serializers.ChoiceField(choices=[PaymentMethod.Kind.CARD])
    number = StrictCharField(max_length=23, write_only=True, help_text=_("The card number."))
    exp_month = StrictIntegerField(min_value=1, max_value=12)
    exp_year = StrictIntegerField(min_value=2000, max_value=2200)
    cvc = StrictCharField(max_length=4, write_only=True)


class SepaDebitCreateSerializer(_MethodCreateSerializer):
    kind = serializers.ChoiceField(choices=[PaymentMethod.Kind.SEPA_DEBIT])
    iban = StrictCharField(max_length=42, write_only=True)
    account_holder = StrictCharField(max_length=200)


class AchDebitCreateSerializer(_MethodCreateSerializer):
    kind = serializers.ChoiceField(choices=[PaymentMethod.Kind.ACH_DEBIT])
    routing_number = StrictCharField(max_length=12, write_only=True)
    account_number = StrictCharField(max_length=20, write_only=True)
    account_holder = StrictCharField(max_length=200)


# The bodies POST /api/payment-methods/ accepts, one per kind: a new kind is one more line here.
CREATE_SERIALIZER_CLASSES = [
    CardCreateSerializer,
    SepaDebitCreateSerializer,
    AchDebitCreateSerializer,
]
CREATE_SERIALIZERS = kinds_of(CREATE_SERIALIZER_CLASSES)


class _MethodIdField(StrictIntegerField):
    def __init__(self, **kwargs):
        super().__init__(min_value=1, max_value=MAX_ID, **kwargs)


class ChargeOrderSerializer(serializers.Serializer):
    """The whole charge order: the primary and the backups in rank. PUT replaces it whole."""

    primary = _MethodIdField(
        allow_null=True, help_text=_("The method charged first; null only with no backups.")
    )
    backups = serializers.ListField(
        child=_MethodIdField(),
        help_text=_("Backup methods in rank, charged in this order when the ones before fail."),
    )

    def validate(self, attrs):
        if attrs["primary"] is None and attrs["backups"]:
            raise serializers.ValidationError({"primary": [_("Choose a primary before any backups.")]})
        return attrs

    @staticmethod
    def method_ids(attrs) -> list[int]:
        return [attrs["primary"], *attrs["backups"]] if attrs["primary"] is not None else []


class ChargeOrderEntrySerializer(serializers.Serializer):
    position = serializers.IntegerField(min_value=1)
    position_label = serializers.CharField()
    method = PaymentMethodSummarySerializer()


class ChargeOrderOutputSerializer(ChargeOrderSerializer):
    entries = ChargeOrderEntrySerializer(many=True, read_only=True)
    max_backups = serializers.SerializerMethodField(help_text=_("How many backups an order may hold."))

    def get_max_backups(self, order) -> int:
        return settings.BILLING_MAX_BACKUPS
