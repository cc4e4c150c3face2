from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from core.api import StrictCharField

from .models import Account, Membership


class TokenRequestSerializer(serializers.Serializer):
    username = StrictCharField(max_length=150)
    password = StrictCharField(max_length=4096, style={"input_type": "password"})


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text=_('Send it as "Authorization: Token <token>".'))


class MembershipSerializer(serializers.ModelSerializer):
    id = serializers.IntegerField(source="account.id", help_text=_("The account's id, for X-Account."))
    name = serializers.CharField(source="account.name")
    status = serializers.ChoiceField(source="account.status", choices=Account.Status)
    currency = serializers.CharField(source="account.currency")

    class Meta:
        model = Membership
        fields = ["id", "name", "status", "currency", "role"]
        read_only_fields = fields
