"""Invoices' words for templates: ``{% load invoices %}``.

``{{ code|skip_reason_words }}`` says why settlement skipped a method, in the active language.
"""

from django import template

from invoices.models import PaymentAttempt

register = template.Library()


@register.filter
def skip_reason_words(code: str) -> str:
    if not code:
        return ""
    try:
        return str(PaymentAttempt.SkipReason(code).label)
    except ValueError:
        return code.replace("_", " ")
