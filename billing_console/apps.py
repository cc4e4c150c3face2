from django.apps import AppConfig


class BillingConsoleConfig(AppConfig):
    name = "billing_console"
    verbose_name = "Billing console"
