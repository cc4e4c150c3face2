from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class InvoicesConfig(AppConfig):
    name = "invoices"
    verbose_name = _("Invoices")

    def ready(self):
        from notifications.models import SentEmail
        from notifications.rendering import register_attachment
        from payments.signals import charge_order_changed

        from . import documents, receivers

        register_attachment(SentEmail.Kind.RECEIPT, documents.receipt_attachment)

        charge_order_changed.connect(
            receivers.past_due_invoices_retry_now, dispatch_uid="invoices.past_due_invoices_retry_now"
        )
