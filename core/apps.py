from django.apps import AppConfig


class CoreConfig(AppConfig):
    """The ground floor: tools every app uses (bulk writes, money, the API toolkit, the console's
    page base). It imports no app of this project."""

    name = "core"
    verbose_name = "Core"

    def ready(self):
        from core import checks  # noqa: F401  (registers the deploy checks)
