"""Words for what accounts stores as codes, for templates that hold only the code (stored emails)."""

from django import template

from accounts.models import Membership

register = template.Library()


@register.filter
def role_label(value) -> str:
    """ "billing" -> "Billing" / "請求担当", in the active language."""
    try:
        return str(Membership.Role(value).label)
    except ValueError:
        return str(value or "")
