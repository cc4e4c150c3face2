"""The `Support` group: support staff see every account in Django admin and can retry, void and
write off invoices, and nothing more.

- view on what the admin shows them: accounts and members, payment methods (masked), invoices and
  their attempts, settlement runs, audit events and sent emails;
- change on invoices, which the admin uses only for the Retry now / Void / Mark uncollectible
  actions (an invoice's own form is read-only for everyone; every change goes through a service);
- no add or delete anywhere, and nothing on users, groups or the sandbox ledger.

Superusers keep every permission. Permissions normally appear only after post_migrate, so this
migration creates the ones it needs first.
"""

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "Support"

PERMISSIONS = {
    "accounts": ["view_account", "view_membership", "view_auditevent"],
    "payments": ["view_paymentmethod"],
    "invoices": ["view_invoice", "change_invoice", "view_paymentattempt", "view_settlementrun"],
    "notifications": ["view_sentemail"],
}


def support_group_sync(apps, using):
    """Create (or reset) the group with exactly PERMISSIONS. Idempotent."""
    for app_label in PERMISSIONS:
        # The installed app config says "this app has models"; `apps` gives the models as of now.
        create_permissions(global_apps.get_app_config(app_label), apps=apps, using=using, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    wanted = [(app_label, codename) for app_label, codenames in PERMISSIONS.items() for codename in codenames]
    permissions = []
    for app_label, codename in wanted:
        permissions.append(
            Permission.objects.using(using).get(content_type__app_label=app_label, codename=codename)
        )
    group, _ = Group.objects.using(using).get_or_create(name=GROUP)
    group.permissions.set(permissions)
    return group


def create_support_group(apps, schema_editor):
    support_group_sync(apps, schema_editor.connection.alias)


def remove_support_group(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.using(schema_editor.connection.alias).filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("payments", "0001_initial"),
        ("invoices", "0001_initial"),
        ("notifications", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_support_group, remove_support_group)]
