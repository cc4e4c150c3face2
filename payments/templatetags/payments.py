"""Payments' words for templates, the console's and the emails' alike: ``{% load payments %}``.

``{{ position|position_label }}`` is "Primary", "Backup 1" …; ``{{ code|decline_words }}`` says why
a charge was declined. Both in the active language, so an email says them in its reader's.
"""

from django import template
from django.urls import reverse

from payments import ranks
from payments.declines import decline_words
from payments.forms import ADD_FORMS

register = template.Library()

register.filter("decline_words", decline_words)


@register.filter
def position_label(position) -> str:
    # As filters do, a variable the context lacks (rendered as "") stays silent.
    return "" if position == "" else ranks.position_label(position)


_ADD_PAGES = {form.kind: slug for slug, form in ADD_FORMS.items()}


@register.filter
def replace_url(method) -> str:
    """The add page of the method's kind, adding a method that takes ``method``'s place."""
    return f"{reverse('payment_method_add', args=[_ADD_PAGES[method.kind]])}?replace={method.pk}"
