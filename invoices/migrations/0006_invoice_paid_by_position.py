from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def paid_positions_backfill(apps, schema_editor):
    """Invoices paid before the column existed take the rank of the attempt that paid them."""
    Invoice = apps.get_model("invoices", "Invoice")
    PaymentAttempt = apps.get_model("invoices", "PaymentAttempt")
    Invoice.objects.filter(paid_by_attempt__isnull=False).update(
        paid_by_position=Subquery(
            PaymentAttempt.objects.filter(pk=OuterRef("paid_by_attempt_id")).values("position")[:1]
        )
    )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_support_group"),
        ("invoices", "0005_webhook_event"),
        ("payments", "0002_gateway_customer"),
    ]

    operations = [
        migrations.AddField(
            model_name="invoice",
            name="paid_by_position",
            field=models.PositiveSmallIntegerField(blank=True, null=True, verbose_name="paid at rank"),
        ),
        migrations.AddIndex(
            model_name="invoice",
            index=models.Index(fields=["currency", "due_on"], name="invoice_recovery_report"),
        ),
        migrations.RunPython(paid_positions_backfill, migrations.RunPython.noop, elidable=True),
    ]
