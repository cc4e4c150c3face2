"""The form a Stripe add-method page posts back, once Stripe.js has saved the method.

It carries the id of the SetupIntent the browser confirmed, and nothing Stripe.js collected: the card
number or IBAN went from the customer's browser to Stripe, never here.
"""

from django import forms
from django.utils.translation import gettext_lazy as _

from .forms import AddMethodForm

SETUP_INTENT_ID = r"^seti_[A-Za-z0-9]+$"


class StripeSetupForm(AddMethodForm):
    setup_intent = forms.RegexField(
        regex=SETUP_INTENT_ID,
        max_length=255,
        widget=forms.HiddenInput,
        error_messages={
            "required": _("The details were not saved with our payment processor. Enter them again."),
            "invalid": _("The details were not saved with our payment processor. Enter them again."),
        },
    )
