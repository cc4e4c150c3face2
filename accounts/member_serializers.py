from django.conf import settings
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from core.api import StrictCharField

from .models import Invitation, Membership


class BillingContactsSerializer(serializers.Serializer):
    """Who receives the account's invoices, receipts and payment notices. PUT replaces both."""

    billing_email = StrictCharField(max_length=254, help_text=_("The account's billing email."))
    recipients = serializers.ListField(
        child=StrictCharField(max_length=254),
        max_length=settings.BILLING_MAX_RECIPIENTS,
        help_text=_("Further addresses that get the same emails; security notices go to the owners only."),
    )


class BillingContactsOutputSerializer(BillingContactsSerializer):
    max_recipients = serializers.SerializerMethodField(help_text=_("How many further recipients fit."))

    def get_max_recipients(self, obj) -> int:
        return settings.BILLING_MAX_RECIPIENTS


class MemberSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username")
    email = serializers.CharField(source="user.email")
    name = serializers.CharField(source="user.get_full_name")
    joined_at = serializers.DateTimeField(source="created_at")

    class Meta:
        model = Membership
        fields = ["id", "username", "email", "name", "role", "joined_at"]
        read_only_fields = fields


class MemberUpdateSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Membership.Role.choices)


class InvitationSerializer(serializers.ModelSerializer):
    invited_by = serializers.CharField(source="invited_by.username", allow_null=True, default=None)

    class Meta:
        model = Invitation
        fields = ["id", "email", "role", "invited_by", "created_at", "expires_at"]
        read_only_fields = fields


class InvitationCreateSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    role = serializers.ChoiceField(choices=Membership.Role.choices)
