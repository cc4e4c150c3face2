from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class InvoicesConfig(AppConfig):
    name = "invoices"
    verbose_name = _("Invoices")

    def ready(self):
        from payments.signals import charge_order_changed

        from . import receivers

        charge_order_changed.connect(
            receivers.past_due_invoices_retry_now, dispatch_uid="invoices.past_due_invoices_retry_now"
        )
