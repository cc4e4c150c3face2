"""Pay now's form: the charge order or one method, offering only what can pay the invoice."""

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from payments.ranks import position_label

from .settlement.eligibility import PayNowChoices, skip_phrase, skip_sentence

CHARGE_ORDER = ""  # the value of "My charge order"


class MethodSelect(forms.Select):
    """A select whose options that cannot pay are shown, disabled, with their reason."""

    def __init__(self, *args, disabled=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.disabled = set(disabled)

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex=subindex, attrs=attrs)
        if str(value) in self.disabled:
            option["attrs"]["disabled"] = True
        return option


def _method_label(step) -> str:
    if step.position is None:
        return step.method.label
    return _("%(method)s (%(rank)s)") % {"method": step.method.label, "rank": position_label(step.position)}


def _unavailable(label: str, reason: str) -> str:
    return _("%(method)s — %(reason)s") % {"method": label, "reason": reason}


class PayNowForm(forms.Form):
    method = forms.ChoiceField(
        label=gettext_lazy("Pay with"),
        required=False,
        error_messages={"invalid_choice": gettext_lazy("Choose one of your payment methods.")},
    )

    def __init__(self, *args, choices: PayNowChoices, **kwargs):
        super().__init__(*args, **kwargs)
        self.choices = choices
        currency = choices.invoice.currency
        order_label = _("My charge order (Primary first, then backups)")
        options, disabled = [], set()
        if choices.charge_order_can_pay:
            options.append((CHARGE_ORDER, order_label))
        else:
            options.append(
                (CHARGE_ORDER, _unavailable(order_label, _("no method in it can pay this invoice")))
            )
            disabled.add(CHARGE_ORDER)
        for step in choices.methods:
            value = str(step.method.pk)
            if step.will_try:
                options.append((value, _method_label(step)))
            else:
                options.append(
                    (
                        value,
                        _unavailable(_method_label(step), skip_phrase(step.skip_reason, currency=currency)),
                    )
                )
                disabled.add(value)
        field = self.fields["method"]
        field.choices = options
        field.widget = MethodSelect(choices=options, disabled=disabled)
        if CHARGE_ORDER in disabled:
            field.initial = next((value for value, _label in options if value not in disabled), None)

    def clean_method(self):
        """The chosen method (None: the charge order); one that cannot pay is refused with its reason."""
        value = self.cleaned_data["method"]
        currency = self.choices.invoice.currency
        if value == CHARGE_ORDER:
            if not self.choices.charge_order_can_pay:
                raise ValidationError(
                    _("Nothing was charged: no method in your charge order can pay this invoice."),
                    code="charge_order",
                )
            return None
        step = self.choices.step_for(int(value))
        if not step.will_try:
            raise ValidationError(
                _("Nothing was charged: %(reasons)s")
                % {"reasons": skip_sentence(step.method, step.skip_reason, currency=currency)},
                code="cannot_pay",
            )
        return step.method
