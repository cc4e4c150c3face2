from django.conf import settings
from django.core.validators import RegexValidator
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.api import ID_SCHEMA, StrictBooleanField, StrictCharField, StrictIntegerField, kinds_of

from .gateways import validation
from .gateways.base import InvalidPaymentDetails
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


def _entry_check(check, value):
    """The gateway's own entry check, as the console's form runs it: a typing mistake is refused
    here, as a field error, and never reaches the gateway (nor counts toward the card-testing limit)."""
    try:
        check(value)
    except InvalidPaymentDetails as exc:
        raise serializers.ValidationError(exc.message, code=exc.code) from None
    return value


class _MethodCreateSerializer(serializers.Serializer):
    add_to_order = StrictBooleanField(
        default=True, help_text=_("Rank it last in the charge order if there is room.")
    )

    def validate_account_holder(self, value):
        return _entry_check(validation.clean_account_holder, value)


class CardCreateSerializer(_MethodCreateSerializer):
    kind = serializers.ChoiceField(choices=[PaymentMethod.Kind.CARD])
    number = StrictCharField(max_length=23, write_only=True, help_text=_("The card number."))
    exp_month = StrictIntegerField(min_value=1, max_value=12)
    exp_year = StrictIntegerField(min_value=2000, max_value=2200)
    cvc = StrictCharField(max_length=4, write_only=True)

    def validate_number(self, value):
        return _entry_check(validation.clean_card_number, value)

    def validate_cvc(self, value):
        return _entry_check(validation.clean_cvc, value)

    def validate(self, attrs):
        try:
            validation.clean_card_expiry(exp_month=attrs["exp_month"], exp_year=attrs["exp_year"])
        except InvalidPaymentDetails as exc:
            raise serializers.ValidationError({exc.field: [exc.message]}, code=exc.code) from None
        return attrs


class SepaDebitCreateSerializer(_MethodCreateSerializer):
    kind = serializers.ChoiceField(choices=[PaymentMethod.Kind.SEPA_DEBIT])
    iban = StrictCharField(max_length=42, write_only=True)
    account_holder = StrictCharField(max_length=200)

    def validate_iban(self, value):
        return _entry_check(validation.clean_iban, value)


class AchDebitCreateSerializer(_MethodCreateSerializer):
    kind = serializers.ChoiceField(choices=[PaymentMethod.Kind.ACH_DEBIT])
    routing_number = StrictCharField(max_length=12, write_only=True)
    account_number = StrictCharField(max_length=20, write_only=True)
    account_holder = StrictCharField(max_length=200)

    def validate_routing_number(self, value):
        return _entry_check(validation.clean_routing_number, value)

    def validate_account_number(self, value):
        return _entry_check(validation.clean_account_number, value)


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


class StripeMethodCreateSerializer(_MethodCreateSerializer):
    """A method saved with Stripe.js (the Stripe gateway): its id at Stripe, never its details.

    POST /api/payment-methods/setup/ gives the client a SetupIntent to confirm with Stripe.js; the
    PaymentMethod it saved (setupIntent.payment_method) is what is sent here."""

    kind = serializers.ChoiceField(choices=[PaymentMethod.Kind.CARD, PaymentMethod.Kind.SEPA_DEBIT])
    payment_method = StrictCharField(
        max_length=255,
        validators=[RegexValidator(r"^pm_[A-Za-z0-9]+\Z", _("A PaymentMethod id starts with pm_."))],
        help_text=_(
            "The id of the PaymentMethod Stripe.js saved (pm_…), attached to the account's customer."
        ),
    )


class PaymentMethodSetupSerializer(serializers.Serializer):
    """POST /api/payment-methods/setup/: which kind of method the client is about to save."""

    kind = serializers.ChoiceField(choices=[PaymentMethod.Kind.CARD, PaymentMethod.Kind.SEPA_DEBIT])


class PaymentMethodSetupOutputSerializer(serializers.Serializer):
    """What a client needs to save a method with Stripe.js itself."""

    kind = serializers.CharField()
    setup_intent = serializers.CharField(help_text=_("The SetupIntent's id (seti_…)."))
    client_secret = serializers.CharField(
        help_text=_("For Stripe.js's confirmCardSetup / confirmSepaDebitSetup. Do not store or log it.")
    )
    publishable_key = serializers.CharField(help_text=_("The key to load Stripe.js with."))
