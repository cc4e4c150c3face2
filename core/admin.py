"""What every app's admin uses: read-only records, links between admin pages, JSON shown readably."""

import json

from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode


class ReadOnlyAdminMixin:
    """A record nobody edits through the admin, superusers included: the view permission shows it,
    and add, change and delete are refused (403)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def admin_link(obj, text=None) -> str:
    url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, obj if text is None else text)


def changelist_link(model, text, **filters) -> str:
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    return format_html('<a href="{}?{}">{}</a>', url, urlencode(filters), text)


def pretty_json(value) -> str:
    if value in (None, "", {}, []):
        return "-"
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))
