"""Forms of the members and billing contacts pages, and of accepting an invitation."""

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.utils.translation import gettext_lazy as _

from .models import Membership


class BillingContactsForm(forms.Form):
    """The billing email and BILLING_MAX_RECIPIENTS fields for further recipients, one address each."""

    billing_email = forms.EmailField(
        label=_("Billing email"),
        help_text=_("Invoices, receipts and payment notices go here."),
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )

    def __init__(self, *args, disabled: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        for n in range(1, settings.BILLING_MAX_RECIPIENTS + 1):
            self.fields[f"recipient_{n}"] = forms.EmailField(
                label=_("Further recipient %(n)s") % {"n": n}, required=False
            )
        for field in self.fields.values():
            field.disabled = disabled

    @classmethod
    def initial_for(cls, contacts: dict) -> dict:
        initial = {"billing_email": contacts["billing_email"]}
        for n, address in enumerate(contacts["recipients"], start=1):
            initial[f"recipient_{n}"] = address
        return initial

    def recipient_fields(self):
        return [self[name] for name in self.fields if name.startswith("recipient_")]

    @property
    def recipients(self) -> list[str]:
        return [
            self.cleaned_data[name]
            for name in self.fields
            if name.startswith("recipient_") and self.cleaned_data.get(name)
        ]


class InvitationForm(forms.Form):
    email = forms.EmailField(label=_("Email address"), widget=forms.EmailInput(attrs={"autocomplete": "off"}))
    role = forms.ChoiceField(label=_("Role"), choices=Membership.Role.choices, initial=Membership.Role.VIEWER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=Membership.Role.choices)


class NewMemberPasswordForm(forms.Form):
    """A password for the invited person's new user, checked by the password validators."""

    password1 = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    password2 = forms.CharField(
        label=_("Password again"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, *args, email: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.email = email

    def clean(self):
        cleaned = super().clean()
        first, second = cleaned.get("password1"), cleaned.get("password2")
        if first and second and first != second:
            self.add_error("password2", _("The two passwords differ. Type the same password twice."))
        elif first:
            user = get_user_model()(username=self.email, email=self.email)
            try:
                password_validation.validate_password(first, user)
            except forms.ValidationError as exc:
                self.add_error("password1", exc)
        return cleaned
