from django.apps import AppConfig


class SandboxConfig(AppConfig):
    """The sandbox processor's own ledger: a stand-in for a remote payment gateway."""

    name = "payments.sandbox"
    label = "sandbox"
    verbose_name = "Sandbox gateway"
