"""Forms for adding and updating payment methods.

The server-side add forms serve the sandbox, the one gateway that takes numbers on our server (and
only its test numbers: any other is refused before a token is made). The numbers typed here go to it
for tokenisation and nowhere else: the widgets never render them back into the page, and the views
mark them as sensitive for error reports. A gateway that collects in the browser gets its
``SetupSession`` in the page's context instead.
"""

import datetime
import re

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .gateways import validation
from .gateways.base import InvalidPaymentDetails
from .models import PaymentMethod

SENSITIVE_FIELDS = ("number", "cvc", "iban", "account_number", "routing_number")


class SensitiveInput(forms.TextInput):
    """A text input that never echoes what was typed (a full card number or IBAN)."""

    def format_value(self, value):
        return None


def _checked(check, *args, **kwargs):
    """Run one of the gateway's own entry checks, so the form and the gateway agree on every rule."""
    try:
        return check(*args, **kwargs)
    except InvalidPaymentDetails as exc:
        raise forms.ValidationError(exc.message, code=exc.code) from None


class AddMethodForm(forms.Form):
    kind: str = ""
    # InvalidPaymentDetails.field names → this form's fields.
    gateway_fields: dict = {}

    add_to_order = forms.BooleanField(
        label=_("Add it to the end of my charge order"),
        help_text=_("Methods in the charge order are charged automatically, in rank."),
        required=False,
        initial=True,
    )

    def field_for_gateway_error(self, field: str) -> str | None:
        field = self.gateway_fields.get(field, field)
        return field if field in self.fields else None


class CardForm(AddMethodForm):
    kind = PaymentMethod.Kind.CARD
    gateway_fields = {"exp_month": "expiry", "exp_year": "expiry", "exp": "expiry", "card_number": "number"}

    number = forms.CharField(
        label=_("Card number"),
        max_length=23,
        widget=SensitiveInput(
            attrs={
                "autocomplete": "cc-number",
                "inputmode": "numeric",
                "spellcheck": "false",
                "placeholder": "1234 1234 1234 1234",
            }
        ),
    )
    expiry = forms.CharField(
        label=_("Expiry (MM/YY)"),
        max_length=7,
        widget=forms.TextInput(
            attrs={"autocomplete": "cc-exp", "inputmode": "numeric", "placeholder": "MM/YY", "size": 7}
        ),
    )
    cvc = forms.CharField(
        label=_("Security code (CVC)"),
        max_length=4,
        widget=SensitiveInput(
            attrs={"autocomplete": "cc-csc", "inputmode": "numeric", "placeholder": "123", "size": 4}
        ),
    )
    field_order = ["number", "expiry", "cvc", "add_to_order"]

    def clean_number(self):
        return _checked(validation.clean_card_number, self.cleaned_data["number"])

    def clean_expiry(self):
        raw = self.cleaned_data["expiry"].replace(" ", "")
        match = re.fullmatch(r"(\d{1,2})/(\d{2}|\d{4})", raw) or re.fullmatch(r"(\d{2})(\d{2})", raw)
        if not match:
            raise forms.ValidationError(
                _("Enter the expiry date as MM/YY, for example 08/29."), code="format"
            )
        return _checked(validation.clean_card_expiry, exp_month=match.group(1), exp_year=match.group(2))

    def clean_cvc(self):
        return _checked(validation.clean_cvc, self.cleaned_data["cvc"])


class SepaDebitForm(AddMethodForm):
    kind = PaymentMethod.Kind.SEPA_DEBIT

    account_holder = forms.CharField(
        label=_("Account holder"), max_length=100, widget=forms.TextInput(attrs={"autocomplete": "name"})
    )
    iban = forms.CharField(
        label=_("IBAN"),
        max_length=42,
        widget=SensitiveInput(attrs={"spellcheck": "false", "placeholder": "DE89 3704 0044 0532 0130 00"}),
    )
    mandate = forms.BooleanField(
        label=_("I authorise the collection of invoices from this account by SEPA Direct Debit."),
        required=True,
    )
    field_order = ["account_holder", "iban", "mandate", "add_to_order"]

    def clean_iban(self):
        return _checked(validation.clean_iban, self.cleaned_data["iban"])


class AchDebitForm(AddMethodForm):
    kind = PaymentMethod.Kind.ACH_DEBIT
    gateway_fields = {"routing": "routing_number", "account": "account_number"}

    account_holder = forms.CharField(
        label=_("Account holder"), max_length=100, widget=forms.TextInput(attrs={"autocomplete": "name"})
    )
    routing_number = forms.CharField(
        label=_("Routing number"),
        max_length=9,
        widget=SensitiveInput(attrs={"inputmode": "numeric", "placeholder": "110000000", "size": 11}),
    )
    account_number = forms.CharField(
        label=_("Account number"),
        max_length=17,
        widget=SensitiveInput(attrs={"inputmode": "numeric", "spellcheck": "false"}),
    )
    mandate = forms.BooleanField(
        label=_("I authorise the collection of invoices from this account by ACH debit."), required=True
    )
    field_order = ["account_holder", "routing_number", "account_number", "mandate", "add_to_order"]

    def clean_routing_number(self):
        return _checked(validation.clean_routing_number, self.cleaned_data["routing_number"])

    def clean_account_number(self):
        return _checked(validation.clean_account_number, self.cleaned_data["account_number"])


ADD_FORMS = {"card": CardForm, "sepa": SepaDebitForm, "bank": AchDebitForm}


class ExpiryForm(forms.Form):
    exp_month = forms.TypedChoiceField(
        label=_("Month"), coerce=int, choices=[(m, f"{m:02d}") for m in range(1, 13)]
    )
    exp_year = forms.TypedChoiceField(label=_("Year"), coerce=int, choices=())

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        year = timezone.localdate().year
        self.fields["exp_year"].choices = [(y, str(y)) for y in range(year, year + 21)]

    def clean(self):
        cleaned = super().clean()
        month, year = cleaned.get("exp_month"), cleaned.get("exp_year")
        if month and year:
            today = timezone.localdate()
            if datetime.date(year, month, 1) < today.replace(day=1):
                self.add_error("exp_month", _("That date is in the past."))
        return cleaned
